"""The PTB tasks' language-model oracle: its scores equal a plain reading of the model, it is tested
on the very episodes every method sees, and its runs are report rows like any other."""

import math

import pytest
import torch
from helpers import invoke, one_line_error
from test_ptb import write_corpus

from bench.data.episodes import eval_episodes
from bench.data.ptb import ptb_sources
from bench.data.tasks import get_task
from bench.engine.oracle import EOS, LanguageModel, OracleSettings, Words, log_likelihoods, run_oracle
from bench.report.collect import collect

SMALL = OracleSettings(hidden=16, layers=1, dropout=0.0, epochs=2, batch=4, bptt=10, lr=1.0, episodes=6)


def test_scoring_from_the_first_blank_keeps_the_difference_between_candidates():
    torch.manual_seed(0)
    model = LanguageModel(12, SMALL).eval()
    a, b = [3, 4, 5, 6, 7], [3, 4, 9, 6, 7]  # the same sentence with another word at index 2
    eos = 0
    full = log_likelihoods(model, [a, b], [0, 0], eos)
    with torch.no_grad():  # the plain reading: every next-token log-probability summed
        ids = torch.tensor([[eos, *a, eos], [eos, *b, eos]])
        logits, _ = model(ids[:, :-1])
        plain = logits.log_softmax(-1).gather(-1, ids[:, 1:, None]).squeeze(-1).sum(1)
    assert torch.allclose(full, plain, atol=1e-5)
    suffix = log_likelihoods(model, [a, b], [2, 2], eos)
    assert torch.allclose(suffix[0] - suffix[1], full[0] - full[1], atol=1e-5)
    assert not torch.allclose(suffix, full)


def test_the_oracle_is_tested_on_every_methods_episodes_and_reported(tmp_path):
    root = write_corpus(tmp_path / "data")
    folders = run_oracle(["ptb-5w1s", "ptb-5w2s"], root, tmp_path / "results", SMALL, threads=1, echo=lambda _: None)
    assert [f.summary().task for f in folders] == ["ptb-5w1s", "ptb-5w2s"]
    for folder in folders:
        task = get_task(folder.summary().task)
        source = ptb_sources(root, task.vocabulary, task.sequence_length)["test"]
        expected = [e.fingerprint for e in eval_episodes(source, task, "test", SMALL.episodes, 0)]
        assert [r["fingerprint"] for r in folder.result().test_rows] == expected
        summary = folder.summary()
        assert summary.method == "lstm-oracle" and summary.profile == "upper-bound" and summary.task_version == task.version
        assert 0 <= summary.value <= 1 and math.isfinite(summary.metrics["test_perplexity"])
        assert summary.metrics["valid_perplexity"] < len(Words(source.sentences).words) * 10
    c = collect(tmp_path / "results")
    assert set(c.runs["label"]) == {"lstm-oracle (upper-bound)"} and len(c.runs) == 2 and c.incomplete.empty


def test_words_hold_every_training_word_and_eos():
    words = Words([["a", "b"], ["<unk>", "c"]])
    assert words.words == ["<eos>", "<unk>", "a", "b", "c"] and words.encode(["a", "zebra"]) == [2, 1]
    assert EOS in words.ids


@pytest.mark.parametrize("args,message", [
    (["--tasks", "omniglot-5w1s"], "the language-model oracle is for the Penn Treebank tasks, not omniglot-5w1s"),
    (["--set", "hiden=3"], "unknown config key 'hiden'"),
    (["--tasks", " "], "--tasks names nothing"),
])
def test_bad_oracle_commands_are_one_line_errors(tmp_path, args, message):
    one_line_error(invoke("oracle", *args, "--out", tmp_path), 2, message)
