"""README's supported-op list is generated from the converter table and kept in sync."""

from pathlib import Path

from tilecc.frontends.onnx import supported_ops_markdown

README = Path(__file__).resolve().parents[2] / "README.md"
BEGIN, END = "<!-- ops:begin (tilecc ops) -->", "<!-- ops:end -->"


def test_readme_lists_the_converter_table():
    text = README.read_text()
    assert BEGIN in text and END in text, "README lacks the generated op list markers"
    block = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert block == supported_ops_markdown().strip(), \
        "README's op list is stale: regenerate it with `tilecc ops`"
