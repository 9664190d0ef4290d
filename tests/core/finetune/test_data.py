import json

import pytest

from core.finetune.data import DataError, DataLimits, file_columns, load_chats, load_labeled
from tests.core.finetune.conftest import HEADLINES, INSTRUCTIONS


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def test_example_headlines_have_three_labels_and_a_clear_majority():
    data = load_labeled(HEADLINES, "headline", "sentiment")
    assert data.label_names == ("negative", "neutral", "positive")
    assert len(data) == 1500 and 0.35 < data.majority_accuracy() < 0.45
    assert file_columns(HEADLINES) == ["headline", "sentiment"]
    assert file_columns(INSTRUCTIONS) == ["messages"]


def test_split_is_stratified_seeded_and_disjoint():
    data = load_labeled(HEADLINES, "headline", "sentiment")
    train, held = data.split(0.2, seed=3)
    again_train, _ = data.split(0.2, seed=3)
    assert train == again_train and len(train) + len(held) == len(data)
    assert set(held.labels) == {0, 1, 2} and abs(len(held) - 300) <= 3


def test_missing_column_names_the_columns_the_file_has(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\nup,pos\ndown,neg\n")
    with pytest.raises(DataError, match="no column 'sentiment'. Its columns: text, label"):
        load_labeled(path, "text", "sentiment")


@pytest.mark.parametrize("body, message", [
    ("text,label\nup,pos\ndown,pos\n", "single label"),
    ("text,label\nup,\ndown,\n", "no row with both a text and a label"),
])
def test_empty_or_single_class_labels_are_refused(tmp_path, body, message):
    with pytest.raises(DataError, match=message):
        load_labeled(write(tmp_path / "a.csv", body), "text", "label")


def test_ten_thousand_classes_are_refused_as_probably_the_wrong_column(tmp_path):
    rows = "".join(f"headline {i},id-{i}\n" for i in range(10_000))
    with pytest.raises(DataError, match="10,000 different labels; the limit is 100"):
        load_labeled(write(tmp_path / "a.csv", "text,label\n" + rows), "text", "label")


def test_non_utf8_file_is_refused_with_the_line(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\nup,pos\nBörse fällt,neg\n", encoding="latin-1")
    with pytest.raises(DataError, match="not UTF-8 .*line 3"):
        load_labeled(path, "text", "label")


def test_a_one_gigabyte_csv_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:  # sparse: 1 GB on paper, nothing on disk
        handle.truncate(1_000_000_000)
    with pytest.raises(DataError, match="1,000 MB; the limit is 50 MB"):
        load_labeled(path, "text", "label")


def test_row_limit_stops_the_stream(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\n" + "up,pos\ndown,neg\n" * 50)
    with pytest.raises(DataError, match="more than 10 rows"):
        load_labeled(path, "text", "label", DataLimits(max_rows=10))


def test_wrong_suffix_and_bad_json_lines_are_explained(tmp_path):
    with pytest.raises(DataError, match="expected a .csv"):
        load_labeled(write(tmp_path / "a.xlsx", "x"), "text", "label")
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        load_chats(write(tmp_path / "c.jsonl", INSTRUCTIONS.read_text().splitlines()[0] + '\n{oops\n'))


def test_chats_must_end_with_an_assistant_answer(tmp_path):
    record = {"messages": [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "q"}]}
    with pytest.raises(DataError, match="record 1 must end with a non-empty assistant message"):
        load_chats(write(tmp_path / "c.jsonl", json.dumps(record) + "\n"))
    assert len(load_chats(INSTRUCTIONS)) == 200
