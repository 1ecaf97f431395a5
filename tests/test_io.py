"""Reading and writing every supported format, in batches, atomically."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from postkit.errors import PostkitError
from postkit.io import OutputSet, detect_format, open_table, read_table, write_table

FRAME = pd.DataFrame(
    {
        "post_id": ["p1", "p2", "p3", "p4", "p5"],
        "forum": ["Robin", "Robin", "Jay", "Jay", "Magpie"],
        "user_id": ["007", "u2", "u3", "u4", "u5"],
        "text": ["hi, \"friends\"", "line one\nline two", "emoji 🙂 and ’curly’", "", "plain"],
        "created_at": ["2020-01-01T00:00:00Z"] * 5,
    }
)

FORMATS = ["posts.csv", "posts.jsonl", "posts.parquet", "posts_ds"]


@pytest.mark.parametrize("name", FORMATS)
def test_round_trip_keeps_values_exactly(tmp_path, name):
    path = tmp_path / name
    write_table(FRAME, path)
    back = read_table(path)
    assert back.columns.tolist() == FRAME.columns.tolist()
    assert back.astype(str).values.tolist() == FRAME.values.tolist()


@pytest.mark.parametrize("name", FORMATS)
def test_batches_are_small_and_indexed_by_record_number(tmp_path, name):
    path = tmp_path / name
    write_table(FRAME, path)
    batches = list(open_table(path, batch_size=2).batches())
    assert [len(b) for b in batches] == [2, 2, 1]
    assert [list(b.index) for b in batches] == [[0, 1], [2, 3], [4]]


def test_csv_keeps_leading_zeros_and_empty_strings(tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text("post_id,user_id,note\n001,007,\n", encoding="utf-8")
    frame = read_table(path)
    assert frame.values.tolist() == [["001", "007", ""]]


def test_csv_with_excel_bom(tmp_path):
    path = tmp_path / "posts.csv"
    path.write_bytes("\ufeffpost_id,text\np1,hello\n".encode("utf-8"))
    assert read_table(path).columns.tolist() == ["post_id", "text"]


def test_jsonl_keeps_json_types(tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_text('{"post_id": "p1", "likes": 3}\n\n{"post_id": "p2", "likes": null, "tags": ["a"]}\n')
    frame = read_table(path)
    assert frame["likes"].tolist()[0] == 3 and isinstance(frame["likes"].tolist()[0], int)
    out = tmp_path / "out.jsonl"
    write_table(frame, out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0] == {"post_id": "p1", "likes": 3, "tags": None}
    assert lines[1] == {"post_id": "p2", "likes": None, "tags": ["a"]}


def test_column_map_renames_on_read(tmp_path):
    path = tmp_path / "posts.csv"
    FRAME.rename(columns={"user_id": "author"}).to_csv(path, index=False)
    reader = open_table(path, column_map=["user_id=author"], required=["user_id"])
    assert "user_id" in reader.columns and "author" not in reader.columns
    assert next(reader.batches())["user_id"].tolist()[0] == "007"


def test_column_map_errors_name_the_problem(tmp_path):
    path = tmp_path / "posts.csv"
    write_table(FRAME, path)
    with pytest.raises(PostkitError, match=r"column 'author' \(mapped with --column user_id=author\) is not in"):
        open_table(path, column_map=["user_id=author"])
    with pytest.raises(PostkitError, match=r"both 'user_id' and 'forum' are present"):
        open_table(path, column_map=["user_id=forum"])
    with pytest.raises(PostkitError, match=r"is not NAME=SOURCE"):
        open_table(path, column_map=["user_id"])


def test_missing_required_column_is_one_clear_error(tmp_path):
    path = tmp_path / "posts.csv"
    write_table(FRAME.drop(columns=["user_id"]), path)
    with pytest.raises(PostkitError) as info:
        open_table(path, required=["post_id", "user_id"])
    message = str(info.value)
    assert str(path) in message and "missing column 'user_id'" in message and "--column user_id=" in message


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "the file is empty"),
        (b"post_id,text\n\xff\xfe bad\n", "not UTF-8"),
    ],
)
def test_unreadable_csv(tmp_path, content, expected):
    path = tmp_path / "posts.csv"
    path.write_bytes(content)
    with pytest.raises(PostkitError, match=expected):
        list(open_table(path).batches())


def test_malformed_csv_names_the_line(tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text("post_id,text\np1,ok\np2,too,many,fields\n")
    with pytest.raises(PostkitError, match=r"row 2: 4 fields on line 3 but the header names 2 columns"):
        list(open_table(path).batches())


def test_invalid_jsonl_names_the_line(tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_text('{"post_id": "p1"}\n{"post_id": \n')
    with pytest.raises(PostkitError, match=r"line 2: invalid JSON"):
        list(open_table(path).batches())


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(PostkitError, match=r"unsupported file type '.txt'"):
        detect_format(tmp_path / "posts.txt")
    with pytest.raises(PostkitError, match=r"file not found"):
        open_table(tmp_path / "nope.csv")


def test_failed_run_leaves_no_output_and_keeps_an_older_one(tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("old\n")
    with pytest.raises(RuntimeError):
        with OutputSet() as outputs:
            writer = outputs.table(out)
            writer.write(FRAME)
            raise RuntimeError("boom half-way")
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no temp files left


def test_outputs_appear_together(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.jsonl"
    with OutputSet() as outputs:
        outputs.table(a).write(FRAME)
        outputs.table(b).write(FRAME)
        assert not a.exists() and not b.exists()  # nothing published before the end
    assert a.exists() and b.exists()


def test_output_may_not_overwrite_an_input(tmp_path):
    path = tmp_path / "posts.csv"
    write_table(FRAME, path)
    before = path.read_bytes()
    with pytest.raises(PostkitError, match="would overwrite the input"):
        with OutputSet(inputs=[path]) as outputs:
            outputs.table(tmp_path / "." / "posts.csv")
    assert path.read_bytes() == before


def test_datasets_folder_is_replaced_but_other_folders_are_not(tmp_path):
    target = tmp_path / "ds"
    write_table(FRAME, target)
    write_table(FRAME.head(2), target)
    assert len(read_table(target)) == 2
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(PostkitError, match="not a datasets folder"):
        write_table(FRAME, other)
    assert (other / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("name", FORMATS)
def test_empty_output_still_has_its_columns(tmp_path, name):
    path = tmp_path / name
    write_table(FRAME.head(0), path)
    assert read_table(path).columns.tolist() == FRAME.columns.tolist() or name.endswith(".jsonl")


def test_parquet_pass_through_types_survive(tmp_path):
    frame = FRAME.assign(likes=[1, 2, None, 4, 5], score=[0.5] * 5)
    source = tmp_path / "in.parquet"
    frame.to_parquet(source)
    reader = open_table(source, batch_size=2)
    out = tmp_path / "out.parquet"
    with OutputSet(inputs=[source]) as outputs:
        writer = outputs.table(out, schema_hint=reader.schema)
        for batch in reader.batches():
            writer.write(batch)
    import pyarrow.parquet as pq

    assert pq.read_schema(out).field("likes").type == pq.read_schema(source).field("likes").type
    assert read_table(out)["likes"].tolist()[:2] == [1, 2]


@pytest.mark.parametrize("name, unit", [("posts.csv", "B"), ("posts.jsonl", "B"), ("posts.parquet", "rows"),
                                        ("posts_ds", "rows")])
def test_progress_adds_up_to_the_total(tmp_path, name, unit):
    path = tmp_path / name
    write_table(FRAME, path)
    reader = open_table(path, batch_size=2)
    steps: list[int] = []
    list(reader.batches(on_progress=steps.append))
    assert reader.progress_unit == unit and len(steps) == 3
    assert sum(steps) == reader.progress_total == (path.stat().st_size if unit == "B" else len(FRAME))


def test_failed_final_rename_leaves_no_temp_files_and_keeps_the_old_output(tmp_path, monkeypatch):
    out = tmp_path / "out.csv"
    out.write_text("old\n")

    def disk_full(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", disk_full)
    with pytest.raises(OSError):
        write_table(FRAME, out)
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


# --------------------------------------------------------------------------- issue 11: strict record parsing


@pytest.mark.parametrize("header", ["user_id,status,recorded_at,status", "user_id,status,recorded_at,Status",
                                    "user_id,status,recorded_at,sta\u200btus"])
def test_duplicate_csv_columns_stop_with_both_positions(tmp_path, header):
    path = tmp_path / "consent.csv"
    path.write_text(f"{header}\nalice,opt_in,2021-01-01,withdrawn\n", encoding="utf-8")
    with pytest.raises(PostkitError, match=r"column 2 and column 4 of the header are both named 'status'"):
        read_table(path)
    with pytest.raises(PostkitError, match=r"column 2 and column 4"):
        open_table(path)  # the posts reader too: a second column of one name is as ambiguous there


def test_column_mapping_that_makes_two_columns_one_is_refused(tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(PostkitError, match=r"after --column mapping, column 1 and column 2"):
        open_table(path, column_map={"a": "user_id", "b": "user_id"})


@pytest.mark.parametrize("strict", [True, False])
def test_a_first_record_with_an_extra_field_is_not_silently_shifted(tmp_path, strict):
    # pandas would make "bob" the index and read the record as alice's opt-in.
    path = tmp_path / "consent.csv"
    path.write_text("user_id,status,recorded_at\nbob,alice,opt_in,2021-01-01\ncarol,opt_out,2021-01-01\n")
    with pytest.raises(PostkitError, match=r"row 1: 4 fields on line 2 but the header names 3 columns") as info:
        if strict:
            read_table(path)
        else:
            list(open_table(path, batch_size=1).batches())
    assert "alice" not in str(info.value) and "bob" not in str(info.value)


def test_a_short_record_in_a_small_table_names_line_row_and_column(tmp_path):
    path = tmp_path / "consent.csv"
    path.write_text('user_id,status,recorded_at,forum\nu1,opt_in,2021-01-01,"Robin\nand Jay"\n\n'
                    "u2,opt_in,2021-01-01\n")
    with pytest.raises(PostkitError, match=r"row 2, column 'forum': 3 fields on line 5 but the header names 4 "
                                           r"columns \(no field for 'forum'\)"):
        read_table(path)
    assert len(open_table(path).read_all()) == 2  # the streaming posts reader skips this check (speed)


def test_duplicate_json_keys_stop_with_line_and_key(tmp_path):
    path = tmp_path / "consent.jsonl"
    path.write_text('{"user_id": "u1", "status": "opt_in"}\n'
                    '{"user_id": "u2", "status": "withdrawn", "status": "opt_in"}\n')
    with pytest.raises(PostkitError, match=r"column 'status': line 2: the key 'status' appears twice"):
        read_table(path)
    path.write_text('{"user_id": "u1", "meta": {"a": 1, "a": 2}}\n')
    with pytest.raises(PostkitError, match=r"line 1: the key 'a' appears twice"):
        read_table(path)


def test_json_keys_differing_only_by_case_are_refused(tmp_path):
    path = tmp_path / "consent.jsonl"
    path.write_text('{"user_id": "u1", "status": "opt_in"}\n{"user_id": "u2", "Status": "withdrawn"}\n')
    with pytest.raises(PostkitError, match=r"line 2: the key 'Status' differs from the key 'status'"):
        read_table(path)
    path.write_text('{"user_id": "u1", "status": "opt_in", "STATUS": "opt_out"}\n')
    with pytest.raises(PostkitError, match=r"column 2 and column 3"):
        read_table(path)


def test_parquet_type_clash_names_the_column_not_the_value(tmp_path):
    out = tmp_path / "out.parquet"
    with pytest.raises(PostkitError) as info:
        with OutputSet() as outputs:
            writer = outputs.table(out)
            writer.write(pd.DataFrame({"post_id": ["p1"], "likes": [3]}))
            writer.write(pd.DataFrame({"post_id": ["p2"], "likes": ["alice.smith@nhs.net"]}))
    message = str(info.value)
    assert "alice.smith" not in message
    assert "rows 2-2" in message and "column 'likes'" in message and "int64 expected" in message
