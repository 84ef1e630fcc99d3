"""Penn Treebank one-shot language modelling: the word split, blanking, labels and episodes,
on a small generated corpus (the real files only where a test says so)."""

import json
import random

import pytest
import torch
from helpers import invoke, one_line_error

from bench.data.episodes import PyRandomStream, eval_episodes
from bench.data.ptb import (BLANK, FILES, PAD, SPLIT_SHA256, TEST_WORDS, UNK, VALIDATION_WORDS, Vocabulary,
                            blanked_window, ptb_sources, read_corpus, read_test_words, split_digest, word_split)
from bench.data.tasks import get_task
from bench.errors import DataError

TASK = get_task("ptb-5w1s")


def write_corpus(root, words=700, test_words=60, seed=1):
    """``ptb.{train,valid,test}.txt`` of random sentences over ``words`` words and ``<unk>``, and
    a test-word list of every ``words // test_words``-th word (the validation words need 500 more)."""
    rng = random.Random(seed)
    vocabulary = [f"w{i:03d}" for i in range(words)] + ["<unk>"]
    (root / "ptb" / TEST_WORDS.parent).mkdir(parents=True, exist_ok=True)
    for name, n in (("ptb.train.txt", 600), ("ptb.valid.txt", 300), ("ptb.test.txt", 300)):
        lines = (" ".join(rng.choice(vocabulary) for _ in range(rng.randint(5, 25))) for _ in range(n))
        (root / "ptb" / name).write_text("".join(f" {line} \n" for line in lines))
    (root / "ptb" / TEST_WORDS).write_text("".join(f"{w}\n" for w in vocabulary[:words:words // test_words][:test_words]))
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("ptb"))


@pytest.fixture(scope="module")
def sources(corpus):
    return ptb_sources(corpus, TASK.vocabulary, TASK.sequence_length)


def test_word_split_keeps_the_test_words_and_draws_disjoint_validation_words_with_the_seed():
    vocabulary = [f"w{i}" for i in range(700)] + ["<unk>"]
    test = vocabulary[:50]
    split = word_split(vocabulary, test)
    assert [len(split[k]) for k in ("train", "val", "test")] == [150, VALIDATION_WORDS, 50]
    assert split["test"] == sorted(test)
    assert set(split["train"]) | set(split["val"]) | set(split["test"]) == set(vocabulary) - {"<unk>"}
    assert not set(split["train"]) & set(split["test"]) and not set(split["train"]) & set(split["val"])
    assert not set(split["val"]) & set(split["test"])
    assert word_split(list(reversed(vocabulary)), test) == split  # order of first appearance does not matter
    assert word_split(vocabulary, test, seed=1)["val"] != split["val"]
    with pytest.raises(DataError, match="1 of the test words are not in the training file's vocabulary .first: 'zebra'"):
        word_split(vocabulary, [*test, "zebra"])
    with pytest.raises(DataError, match="only 450 words besides the test words"):
        word_split(vocabulary[:500], test)


def test_the_real_split_is_the_papers_test_words_and_its_20_query_episodes_use_the_words_that_have_them(data_root):
    """Done when of the PTB issue: the test classes are exactly the paper's words with enough
    sentences in the test file (195 / 172 / 154 at 1 / 2 / 3 shots and 4 queries), the training
    words are disjoint from them, and the split is the digest the code was written for."""
    words, _ = read_test_words(data_root)
    sources = ptb_sources(data_root, TASK.vocabulary, TASK.sequence_length)
    train, val, test = (set(sources[k].vocabulary.words) for k in ("train", "val", "test"))
    assert train == val == test  # one vocabulary: the training words and the three special tokens
    corpus = {k: [line.split() for line in (data_root / "ptb" / FILES[k]).read_text().splitlines()] for k in FILES}
    split = word_split([w for line in corpus["train"] for w in line], words)
    assert split_digest(split) == SPLIT_SHA256 and split["test"] == sorted(words) and len(words) == 1000
    assert [len(split[k]) for k in ("train", "val", "test")] == [8498, 500, 1000]
    assert not set(split["train"]) & set(words) and len(Vocabulary(split["train"])) == TASK.vocabulary
    counts = {w: sum(w in line for line in corpus["test"]) for w in words}
    for shots, expected in ((1, 195), (2, 172), (3, 154)):
        task = get_task(f"ptb-5w{shots}s")
        assert task.ways * task.queries == 20
        eligible = sources["test"].eligible(shots + task.queries)
        assert eligible == sorted(w for w, n in counts.items() if n >= shots + 4) and len(eligible) == expected


def test_the_test_words_file_is_checked(tmp_path, data_root):
    root = write_corpus(tmp_path / "generated")
    (root / "ptb" / TEST_WORDS).write_text("w000\nw001\nw000\n")
    with pytest.raises(DataError, match="lists 3 words, 2 of them distinct"):
        ptb_sources(root, TASK.vocabulary, TASK.sequence_length)
    (root / "ptb" / TEST_WORDS).unlink()
    with pytest.raises(DataError, match="PTB test words not found at .*Appendix D"):
        ptb_sources(root, TASK.vocabulary, TASK.sequence_length)
    official = tmp_path / "official"  # the real corpus with another list of test words
    (official / "ptb" / TEST_WORDS.parent).mkdir(parents=True)
    for name in FILES.values():
        (official / "ptb" / name).symlink_to(data_root / "ptb" / name)
    (official / "ptb" / TEST_WORDS).write_text("the\nof\n")
    with pytest.raises(DataError, match="is not the paper's list of test words"):
        ptb_sources(official, TASK.vocabulary, TASK.sequence_length)


def test_a_window_is_centred_on_the_first_blank_and_blanks_every_occurrence():
    vocabulary = Vocabulary(["a", "b", "c"])  # ids 3, 4, 5
    sentence = ["a", "x", "b", "c", "b"]
    assert blanked_window(sentence, "b", vocabulary, 5) == [3, UNK, BLANK, 5, BLANK]
    assert blanked_window(sentence, "a", vocabulary, 5) == [PAD, PAD, BLANK, UNK, 4]
    assert blanked_window(sentence, "b", vocabulary, 3) == [UNK, BLANK, 5]


def test_a_sentence_start_window_leaves_the_blank_where_it_falls():
    vocabulary = Vocabulary(["a", "b", "c"])  # ids 3, 4, 5
    sentence = ["a", "x", "b", "c", "b"]
    assert blanked_window(sentence, "b", vocabulary, 5, centred=False) == [3, UNK, BLANK, 5, BLANK]
    assert blanked_window(sentence, "c", vocabulary, 4, centred=False) == [3, UNK, 4, BLANK]
    assert blanked_window(sentence, "a", vocabulary, 7, centred=False) == [BLANK, UNK, 4, 5, 4, PAD, PAD]
    assert blanked_window(sentence, "c", vocabulary, 3, centred=False) == [4, BLANK, 4]  # beyond the window: centred


def test_a_task_of_the_sentence_start_split_gets_sentence_start_windows(corpus):
    import dataclasses

    from bench.data.ptb import sources

    task = dataclasses.replace(TASK, split="vinyals-sentence-start")
    test = sources(task, corpus)["test"]
    assert not test.centred and test.identity["window"] == "sentence-start" and test.identity["held_out_context"] == "unk"
    assert sources(TASK, corpus)["test"].centred and "window" not in sources(TASK, corpus)["test"].identity


def test_a_task_drawing_another_tasks_episodes_gets_exactly_those(sources):
    import dataclasses

    variant = dataclasses.replace(TASK, name="ptb-5w1s@other", sequence_length=21)
    for split in ("val", "test"):
        base = [e.fingerprint for e in eval_episodes(sources[split], TASK, split, 5, 0)]
        assert [e.fingerprint for e in eval_episodes(sources[split], variant, split, 5, 0)] != base  # its own by default
        shared = dataclasses.replace(variant, episodes_of=TASK.name)
        assert [e.fingerprint for e in eval_episodes(sources[split], shared, split, 5, 0)] == base


def test_the_bag_of_words_encoder_averages_the_words_and_skips_padding():
    from bench.interface.backbones import BagOfWords

    bag = BagOfWords(10, 4)
    tokens = torch.tensor([[PAD, 3, 4, PAD], [5, PAD, PAD, PAD], [PAD, PAD, PAD, PAD]])
    weight = bag.embedding.weight
    assert torch.allclose(bag(tokens), torch.stack([(weight[3] + weight[4]) / 2, weight[5], torch.zeros(4)]))


def test_the_splits_draw_disjoint_words_from_their_own_files(sources, corpus):
    words = {name: set(source.words) for name, source in sources.items()}
    assert not words["train"] & words["test"] and not words["train"] & words["val"] and not words["val"] & words["test"]
    split = word_split([w for s in sources["train"].sentences for w in s], read_test_words(corpus)[0])
    assert all(words[name] <= set(split[name]) for name in words)
    assert sources["test"].sentences == [line.split() for line in (corpus / "ptb" / FILES["test"]).read_text().splitlines()]


@pytest.mark.parametrize("split", ["train", "test"])
def test_examples_hold_a_blank_at_the_centre_and_never_their_word(sources, split):
    source = sources[split]
    episodes = eval_episodes(source, TASK, split, 20, 0)
    batch = source.collate(episodes, 5, 1)
    x = torch.cat([batch.support_x, batch.query_x], 1)  # [T, 10, L]
    y = torch.cat([batch.support_y, batch.query_y], 1)
    centre = TASK.sequence_length // 2
    assert (x[:, :, centre] == BLANK).all()
    for t, episode in enumerate(episodes):
        ids = [source.vocabulary.encode(w) for w in episode.classes]
        if split == "test":
            assert ids == [UNK] * 5  # held-out words have no token of their own
        for label, word_id in enumerate(ids):
            rows = x[t][y[t] == label]
            assert rows.shape[0] == 1 + TASK.queries  # one support sentence and the task's queries
            if word_id != UNK:
                assert not (rows == word_id).any()


def test_labels_follow_the_episode_classes_and_sentences_hold_their_word(sources):
    source = sources["train"]
    episode = source.sample(5, 2, 1, PyRandomStream(3))
    batch = source.collate([episode], 5, 2)
    assert batch.support_y.tolist() == [[0, 0, 1, 1, 2, 2, 3, 3, 4, 4]]
    assert batch.query_y.tolist() == [[0, 1, 2, 3, 4]]
    for word, sentences in zip(episode.classes, episode.payload):
        assert len(set(sentences)) == 3
        assert all(word in source.sentences[i] for i in sentences)


def test_held_out_words_are_unknown_wherever_they_occur(sources):
    vocabulary = sources["train"].vocabulary
    for name in ("val", "test"):
        assert all(vocabulary.encode(w) == UNK for w in sources[name].words)
    assert {vocabulary.encode(w) for w in sources["train"].words} >= {3}


def test_the_visible_context_variant_shows_held_out_words_except_where_they_are_blanked(corpus, sources):
    visible = ptb_sources(corpus, 10_000, TASK.sequence_length, visible_context=True)
    train_word, test_word = sources["train"].words[0], sources["test"].words[0]
    for held_out, rule in ((sources, "unk"), (visible, "visible")):
        vocabulary = held_out["train"].vocabulary
        context = UNK if rule == "unk" else vocabulary.encode(test_word)
        assert context != UNK or rule == "unk"
        assert blanked_window([test_word, train_word, test_word], train_word, vocabulary, 3) == [context, BLANK, context]
        assert blanked_window([train_word, test_word, test_word], test_word, vocabulary, 3) == [
            vocabulary.encode(train_word), BLANK, BLANK]
        assert held_out["test"].identity["held_out_context"] == rule
    assert len(visible["train"].vocabulary) == len(sources["train"].vocabulary) + VALIDATION_WORDS + len(read_test_words(corpus)[0])
    assert {w for w in visible["test"].words} == set(sources["test"].words)  # the same classes either way


def test_words_too_rare_for_the_episode_shape_are_dropped(sources):
    source = sources["val"]
    counts = {w: len(source.holding[w]) for w in source.words}
    for per_class in (2, 12, 40):
        assert source.eligible(per_class) == sorted(w for w, n in counts.items() if n >= per_class)
    with pytest.raises(Exception, match="only .* words of the split occur in 1000 or more sentences"):
        source.check(5, 999, 1, "val episodes")


def test_every_method_is_tested_on_the_same_episodes(corpus, tmp_path):
    fingerprints = {}
    for method in ("protonet", "matchingnet", "maml", "csn"):
        out = tmp_path / method
        result = invoke("run", "--method", method, "--task", "ptb-5w1s", "--profile", "smoke", "--out", out,
                        "--seed", {"protonet": 0, "matchingnet": 1, "maml": 2, "csn": 3}[method], "--data-root", corpus)
        assert result.exit_code == 0, result.output
        (run,) = (out / "runs").iterdir()
        summary = json.loads((run / "summary.json").read_text())
        assert 0.0 <= summary["accuracy"] <= 1.0 and summary["episodes"] == 8
        rows = [json.loads(line) for line in (run / "test_episodes.jsonl").read_text().splitlines()]
        fingerprints[method] = [(row["fingerprint"], row["classes"]) for row in rows]
    assert len(fingerprints["protonet"]) == 8
    assert all(f == fingerprints["protonet"] for f in fingerprints.values())


def test_missing_and_corrupt_files_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="Penn Treebank not found under"):
        read_corpus(tmp_path, download=False)
    root = write_corpus(tmp_path / "bad")
    (root / "ptb" / FILES["test"]).write_bytes(b"\xff\xfe broken")
    with pytest.raises(DataError, match="is not UTF-8 text"):
        ptb_sources(root, TASK.vocabulary, TASK.sequence_length)
    (root / "ptb" / FILES["test"]).write_text("\n \n")
    with pytest.raises(DataError, match="holds no sentences"):
        ptb_sources(root, TASK.vocabulary, TASK.sequence_length)


def test_a_corpus_larger_than_the_tasks_vocabulary_is_refused(tmp_path):
    root = write_corpus(tmp_path, words=800)
    with pytest.raises(DataError, match="more than the task's 100"):
        ptb_sources(root, 100, TASK.sequence_length)


def test_an_image_backbone_on_text_is_a_one_line_error(corpus, tmp_path):
    result = invoke("run", "--method", "protonet", "--task", "ptb-5w1s", "--profile", "smoke", "--data-root", corpus,
                    "--set", "method.backbone=conv4-64-max", "--out", tmp_path)
    one_line_error(result, 2, "backbone 'conv4-64-max' does not fit task 'ptb-5w1s'")
    result = invoke("run", "--method", "csn", "--task", "omniglot-5w1s", "--profile", "smoke",
                    "--set", "method.architecture=text", "--out", tmp_path)
    one_line_error(result, 2, "method.architecture 'text' does not fit image task 'omniglot-5w1s'")


def test_verify_names_missing_and_altered_files_and_accepts_the_real_ones(tmp_path, data_root):
    from bench.data import ptb

    absent = ptb.verify(tmp_path)  # no ptb folder: nothing to check
    assert (absent.checked, absent.missing, absent.corrupt) == ("", [], [])
    root = write_corpus(tmp_path / "generated")
    (root / "ptb" / FILES["val"]).unlink()
    result = ptb.verify(root)
    assert result.missing == [str(root / "ptb" / FILES["val"])]
    assert sorted(result.corrupt) == sorted([*(str(root / "ptb" / FILES[s]) for s in ("train", "test")), str(root / "ptb" / TEST_WORDS)])
    real = ptb.verify(data_root)
    assert real.ok and real.checked == "the Penn Treebank files and the paper's test words"
    assert ptb_sources(data_root, TASK.vocabulary, TASK.sequence_length)["test"].identity["official"]


def test_the_gap_script_trains_every_variant_and_keeps_validation_accuracy(corpus, tmp_path, monkeypatch, capsys):
    import csv
    import runpy
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    command = [sys.executable, "scripts/ptb_gap.py", "--methods", "protonet", "--seeds", "0", "--profile", "smoke",
               "--test-episodes", "2", "--data-root", str(corpus), "--out", str(tmp_path)]
    some = subprocess.run(command + ["--variants", "window-21,text-bow-encoder"], cwd=repo, capture_output=True, text=True, timeout=600)
    assert some.returncode == 0, some.stderr
    assert [r["variant"] for r in csv.DictReader(open(tmp_path / "ptb_gap.csv"))] == ["window-21", "text-bow-encoder"]
    first = sorted(p.name for p in (tmp_path / "runs").iterdir())
    # then all: the two finished runs are read, not trained again; the other four are trained
    done = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(open(tmp_path / "ptb_gap.csv")))
    assert len(first) == 2 and set(first) <= {r["run"] for r in rows} and len(list((tmp_path / "runs").iterdir())) == 6
    assert [r["task"] for r in rows] == ["ptb-5w1s", "ptb-5w1s@visible-context", "ptb-5w1s@window-21", "ptb-5w1s@window-81",
                                         "ptb-5w1s@sentence-start", "ptb-5w1s"]
    # every variant was validated on the base task's episodes (the same words and sentences)
    streams = [json.loads((tmp_path / "runs" / r["run"] / "summary.json").read_text())["seeds"] for r in rows]
    assert len({s["val"] for s in streams}) == 1 and len({s["train"] for s in streams}) == 5
    assert all(0 <= float(r["best_val"]) <= 1 for r in rows) and "| text-bow-encoder | protonet |" in done.stdout
    configs = [json.loads((tmp_path / "runs" / r["run"] / "config.json").read_text()) for r in rows]
    assert [c["task"] for c in configs] == [r["task"] for r in rows]
    assert [c["method_settings"]["backbone"] for c in configs] == ["auto"] * 5 + ["text-bow"]
    from bench.data.tasks import TASKS

    monkeypatch.setattr(TASKS, "_items", dict(TASKS._items))  # the script registers its variants: not for other tests
    monkeypatch.setattr(sys, "argv", ["ptb_gap.py", "--variants", "window-22", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="^error: unknown variants window-22; known: tasks-rule, "):
        runpy.run_path(str(repo / "scripts" / "ptb_gap.py"), run_name="__main__")
