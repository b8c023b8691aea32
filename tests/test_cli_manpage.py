"""man/docassist.1 is generated from the commands; it must match what the CLI is now."""
from docassist import manpage
from docassist.cli import cli
from docassist.errors import EXIT_CODES


def test_man_page_is_current():
    assert manpage.MAN_PATH.read_text(encoding="utf-8") == manpage.generate(), \
        "man/docassist.1 is out of date: run `python -m docassist.manpage`"


def test_man_page_lists_every_command_and_exit_code():
    text = manpage.generate()

    def walk(cmd, path):
        for name, sub in getattr(cmd, "commands", {}).items():
            yield " ".join(path + [name])
            yield from walk(sub, path + [name])
    names = list(walk(cli, []))
    assert {"summarize", "ask", "chat", "models add", "models default"} <= set(names)
    for name in names:
        assert f".SS docassist {name.replace('-', chr(92) + '-')}\n" in text, name
    for code in EXIT_CODES:
        assert f".TP\n\\fB{code}\\fR\n" in text


def test_shell_completion_scripts_and_completions():
    from click.testing import CliRunner

    runner = CliRunner()
    for shell, marker in [("bash", "_docassist_completion()"), ("zsh", "#compdef docassist"),
                          ("fish", "complete --no-files --command docassist")]:
        r = runner.invoke(cli, [], prog_name="docassist",
                          env={"_DOCASSIST_COMPLETE": f"{shell}_source"})
        assert r.exit_code == 0 and marker in r.stdout, (shell, r.output)
    r = runner.invoke(cli, [], prog_name="docassist",
                      env={"_DOCASSIST_COMPLETE": "bash_complete",
                           "COMP_WORDS": "docassist models de", "COMP_CWORD": "2"})
    assert r.stdout.split() == ["plain,default"]


def test_readme_documents_every_exit_code():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    codes = {int(c) for c in re.findall(r"^\| (\d+) \|", section, re.M)}
    assert codes == set(EXIT_CODES)
