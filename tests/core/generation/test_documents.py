import pytest

from core.errors import BadFileError
from core.generation.documents import read_document


def test_reads_utf8_text(tmp_path):
    path = tmp_path / "doc.md"
    path.write_text("# Title\nBody ü", encoding="utf-8")
    assert read_document(path, 1000) == "# Title\nBody ü"


@pytest.mark.parametrize("name,data,message", [
    ("a.png", b"\x89PNG\r\n", "not a text document"),
    ("a.txt", b"abc\x00\x01\x02", "looks binary"),
    ("a.txt", b"caf\xe9 latin-1", "not UTF-8"),
    ("a.txt", b"   \n", "empty"),
    ("a.txt", b"x" * 2000, "documents up to"),
])
def test_bad_uploads_get_a_clear_message(tmp_path, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(BadFileError, match=message):
        read_document(path, 1000)
