"""Shared fixtures: paths to the real models beside the project, and the GPU adapter."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_MODELS = ROOT.parent / "shared" / "models"


@pytest.fixture(scope="session")
def shared_models() -> Path:
    if not SHARED_MODELS.is_dir():
        pytest.skip(f"real test models not present at {SHARED_MODELS}")
    return SHARED_MODELS


@pytest.fixture(scope="session")
def stories260k(shared_models) -> Path:
    p = shared_models / "stories260K" / "stories260K.gguf"
    if not p.exists():
        pytest.skip(f"{p} missing")
    return p


@pytest.fixture(scope="session")
def llama2_tokenizer_model(shared_models) -> Path:
    p = shared_models / "llama2-tokenizer" / "tokenizer.model"
    if not p.exists():
        pytest.skip(f"{p} missing")
    return p
