"""Documents: text extraction with pages kept (PDF and text files) and token-sized chunks.

Importing this package loads no heavy library; pypdf is imported when a PDF is opened.
"""
from docassist.documents.chunk import PAGE_SEP, Chunk, chunk_pages
from docassist.documents.extract import Document, Page, open_documents

__all__ = ["PAGE_SEP", "Chunk", "Document", "Page", "chunk_pages", "open_documents"]
