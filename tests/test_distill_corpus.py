from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from tests.distill_fixtures import make_image, shared_data_dir

from imgsent.distill.corpus import Post, normalize_text, read_corpus
from imgsent.errors import CorpusError

WORDS = "a fine sunny day at the beach with friends"


def _jsonl(path: Path, rows: list[object]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_normalize_text() -> None:
    text = "hey @bob_1 look https://t.co/x and www.example.com, mail a@b.c"
    assert normalize_text(text) == "hey @user look http and http mail a@b.c"


def test_jsonl_filters_and_paths(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    make_image(root / "images" / "a.jpg")
    make_image(root / "images" / "b.jpg")
    outside = make_image(tmp_path / "outside.jpg")
    (root / "images" / "link.jpg").symlink_to(outside)
    rows = [
        {"id": "1", "text": "line one\u2028line two " + WORDS, "images": ["images/a.jpg"]},
        "{not json",
        {"id": "2", "text": "   ", "images": ["images/a.jpg"]},
        {"id": "3", "text": "too short", "images": ["images/a.jpg"]},
        {"id": "4", "text": WORDS, "images": ["images/a.jpg"], "lang": "fr"},
        {"id": "5", "text": WORDS, "images": ["../outside.jpg"]},
        {"id": "6", "text": WORDS, "images": [str(outside)]},
        {"id": "7", "text": WORDS, "images": ["images/link.jpg"]},
        {"id": "8", "text": WORDS, "images": ["images/missing.jpg", "images/b.jpg"]},
        {"id": "9", "text": WORDS, "images": ["https://example.com/x.jpg", "ftp://example.com/y.jpg"]},
        {"id": "1", "text": WORDS, "images": ["images/a.jpg"]},
        {"id": "10", "text": WORDS, "images": ["images/a.jpg"], "referenced_tweets": [{"type": "retweeted"}]},
        {"id": 11, "text": "@someone " + WORDS, "images": "images/b.jpg", "lang": "EN"},
        ["not", "an", "object"],
        {"id": "12", "text": WORDS, "images": []},
    ]
    reader = read_corpus(_jsonl(root / "corpus.jsonl", rows))
    posts = list(reader)
    report = reader.report
    assert [p.id for p in posts] == ["1", "8", "9", "11"]
    assert "\u2028" in posts[0].text  # only "\n" separates records
    assert posts[0].images == (str((root / "images" / "a.jpg").resolve()),)
    assert posts[1].images == (str((root / "images" / "b.jpg").resolve()),)
    assert posts[2].images == ("https://example.com/x.jpg",)
    assert posts[3] == Post("11", "@user " + WORDS, (str((root / "images" / "b.jpg").resolve()),), "EN")
    assert report.read == len(rows)
    assert report.kept == 4 and report.images_kept == 4
    assert report.dropped == {
        "bad_json": 1, "empty_text": 1, "too_few_words": 1, "language": 1, "no_image": 4,
        "duplicate_id": 1, "retweet": 1, "bad_record": 1,
    }
    assert report.images_dropped == {"path_escape": 3, "missing_file": 1, "bad_scheme": 1}
    assert report.no_lang == 3
    # iterating again re-reads and refills the report
    assert len(list(reader)) == 4 and reader.report.read == len(rows)


def test_min_words_and_lang_options(tmp_path: Path) -> None:
    make_image(tmp_path / "a.jpg")
    path = _jsonl(tmp_path / "c.jsonl", [
        {"id": "1", "text": "one two three four five", "images": ["a.jpg"], "lang": "de"},
        {"id": "2", "text": "one two three four five six", "images": ["a.jpg"], "lang": "en"},
    ])
    assert [p.id for p in read_corpus(path)] == ["2"]  # default: more than 5 words, English
    assert [p.id for p in read_corpus(path, min_words=5, lang=None)] == ["1", "2"]


def _tweet(tid: str, text: str, keys: list[str], lang: str = "en", refs: list[str] | None = None) -> dict:
    tweet: dict = {"id": tid, "text": text, "lang": lang, "attachments": {"media_keys": keys}}
    if refs:
        tweet["referenced_tweets"] = [{"type": t, "id": "0"} for t in refs]
    return tweet


def _response() -> dict:
    return {
        "data": [
            _tweet("100", "so happy with @bob today https://t.co/abc " + WORDS, ["3_1", "3_2"]),
            _tweet("101", WORDS, ["3_3"], refs=["replied_to"]),
            _tweet("102", WORDS, ["3_1"], refs=["quoted"]),
            _tweet("103", WORDS, ["3_4"]),
            _tweet("104", WORDS, ["3_1"], lang="es"),
            _tweet("105", WORDS, ["9_9"]),
        ],
        "includes": {"media": [
            {"media_key": "3_1", "type": "photo", "url": "https://pbs.twimg.com/media/a.jpg"},
            {"media_key": "3_2", "type": "photo", "url": "https://pbs.twimg.com/media/b.jpg"},
            {"media_key": "3_3", "type": "photo", "url": "https://pbs.twimg.com/media/c.jpg"},
            {"media_key": "3_4", "type": "video", "preview_image_url": "https://pbs.twimg.com/v.jpg"},
        ]},
        "meta": {"result_count": 6},
    }


@pytest.mark.parametrize("layout", ["lines", "array", "pretty"])
def test_twitter_v2(tmp_path: Path, layout: str) -> None:
    path = tmp_path / "tweets.json"
    stream = {"data": _tweet("200", WORDS, ["7_1"]),
              "includes": {"media": [{"media_key": "7_1", "type": "photo", "url": "https://x.y/z.png"}]}}
    if layout == "lines":
        path.write_text(json.dumps(_response()) + "\n" + json.dumps(stream) + "\n{broken\n", encoding="utf-8")
    elif layout == "array":
        path.write_text(json.dumps([_response(), stream]), encoding="utf-8")
    else:
        path.write_text(json.dumps(_response(), indent=2), encoding="utf-8")
    reader = read_corpus(path)
    posts = list(reader)
    assert reader.format == "twitter"
    assert posts[0] == Post(
        "100", "so happy with @user today http " + WORDS,
        ("https://pbs.twimg.com/media/a.jpg", "https://pbs.twimg.com/media/b.jpg"), "en",
    )
    dropped = reader.report.dropped
    assert dropped["reply"] == 1 and dropped["quote"] == 1 and dropped["language"] == 1
    assert dropped["no_image"] == 2
    assert reader.report.images_dropped == {"not_photo": 1, "unknown_media_key": 1}
    if layout == "lines":
        assert [p.id for p in posts] == ["100", "200"] and dropped["bad_json"] == 1
    kept_with_refs = list(read_corpus(path, drop_references=False))
    assert {"101", "102"} <= {p.id for p in kept_with_refs}


def test_csv(tmp_path: Path) -> None:
    make_image(tmp_path / "img" / "a.jpg")
    path = tmp_path / "c.csv"
    path.write_text(
        "id,text,image,lang\n"
        f'1,"multi\nline text {WORDS}",img/a.jpg,en\n'
        f"2,{WORDS},../escape.jpg,en\n"
        f"3,{WORDS},img/a.jpg,en,extra\n"
        f"4,{WORDS},,en\n",
        encoding="utf-8",
    )
    reader = read_corpus(path)
    posts = list(reader)
    assert [p.id for p in posts] == ["1"] and posts[0].text.startswith("multi\nline")
    assert reader.report.dropped == {"no_image": 2, "bad_record": 1}
    assert reader.report.images_dropped == {"path_escape": 1}


def test_unreadable_files_raise(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="not found"):
        read_corpus(tmp_path / "nope.jsonl")
    bad = tmp_path / "c.csv"
    bad.write_text("identifier,body\n1,x\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"lacks the column\(s\) \['id', 'image', 'text'\]"):
        list(read_corpus(bad))
    other = tmp_path / "c.parquet"
    other.write_bytes(b"PAR1")
    with pytest.raises(CorpusError, match="pass format="):
        read_corpus(other)
    with pytest.raises(CorpusError, match="Unknown corpus format 'xml'"):
        read_corpus(bad, format="xml")  # type: ignore[arg-type]
    array = tmp_path / "a.json"
    array.write_text("[{", encoding="utf-8")
    with pytest.raises(CorpusError, match="single JSON document"):
        list(read_corpus(array))


_OPENED: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.fsdecode(args[0]))


@pytest.mark.shared_data
def test_real_twitter1_dev_corpus() -> None:
    global _OPENED
    folder = shared_data_dir() / "twitter1-dev"
    if not (folder / "corpus.jsonl").is_file():
        pytest.skip(f"{folder / 'corpus.jsonl'} is absent")
    sys.addaudithook(_audit)
    _OPENED = []
    try:
        reader = read_corpus(folder / "corpus.jsonl")
        posts = list(reader)
        opened = list(_OPENED)
    finally:
        _OPENED = None
    report = reader.report
    assert report.read == 750 and report.kept == 750
    assert sum(len(p.images) for p in posts) == 750 == report.images_kept
    assert report.images_dropped.get("path_escape", 0) == 0 and not report.dropped
    assert report.no_lang == 750
    assert all(Path(i).is_file() for p in posts for i in p.images)
    assert not any(Path(p).name == "labels.csv" for p in opened), opened
    assert any(Path(p).name == "corpus.jsonl" for p in opened)
