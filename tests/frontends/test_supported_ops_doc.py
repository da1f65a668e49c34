"""docs/ops.md's supported-op list is generated from the converter table and kept in sync."""

from pathlib import Path

from tilecc.frontends.onnx import supported_ops_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "ops.md"
BEGIN, END = "<!-- ops:begin (tilecc ops) -->", "<!-- ops:end -->"


def test_docs_list_the_converter_table():
    text = DOC.read_text()
    assert BEGIN in text and END in text, "docs/ops.md lacks the generated op list markers"
    block = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert block == supported_ops_markdown().strip(), \
        "docs/ops.md's op list is stale: regenerate it with `tilecc ops`"
