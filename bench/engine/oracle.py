"""The Penn Treebank tasks' upper bound: the Matching Networks paper's "oracle", an LSTM language
model trained on the whole training file with every word visible.

It is not a few-shot method: it knows the identity of every candidate word, which the ``Method``
interface never gives a method, and it ignores the support sentences. For each query sentence of
a test episode it puts each of the episode's 5 words in place of the blanked word (every
occurrence) and picks the word whose sentence the model finds most likely. It is scored on
exactly the test episodes of ``ptb-5w{1,2,3}s`` that every method sees, and written as a run
folder of method ``lstm-oracle``, profile ``upper-bound``, that ``report`` reads like any run.

One model serves all the tasks: trained with truncated back-propagation through time on the
training file, its epoch chosen by the validation file's perplexity (the language-modelling
convention); its test-file perplexity is recorded too. The full sentence is scored (``<eos>``
before and after), not the 41-token window the methods see.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

from bench.data import ptb
from bench.data.episodes import Episode, eval_episodes
from bench.data.tasks import get_task
from bench.engine.device import torch_threads
from bench.engine.provenance import environment
from bench.errors import RunFailed, UserError
from bench.results.runfolder import RunFolder
from bench.results.summary import Budget, RunSummary
from bench.stats import mean_ci95

METHOD, PROFILE = "lstm-oracle", "upper-bound"
EVAL_SEED = 0  # the runs' default ``eval.seed``: the same validation and test episodes as every method's
EOS = "<eos>"


@dataclass(frozen=True)
class OracleSettings:
    """The language model and its training (``cli.py oracle --set key=value``)."""

    hidden: int = 200  # LSTM units per layer and word embedding size (Zaremba et al.'s small model: 2 x 200)
    layers: int = 2
    dropout: float = 0.2
    epochs: int = 6
    batch: int = 20  # parallel streams of the training text
    bptt: int = 35  # tokens back-propagated through
    lr: float = 20.0  # SGD; divided by 4 after an epoch that does not lower validation perplexity
    clip: float = 0.25  # gradient norm
    seed: int = 0
    max_tokens: int = 0  # train on the first N tokens only (0: all); for tests and timing
    episodes: int = 0  # test episodes per task (0: the task's, as every method is tested on)


class LanguageModel(nn.Module):
    def __init__(self, vocabulary: int, s: OracleSettings):
        super().__init__()
        self.drop = nn.Dropout(s.dropout)
        self.embed = nn.Embedding(vocabulary, s.hidden)
        self.lstm = nn.LSTM(s.hidden, s.hidden, s.layers, dropout=s.dropout if s.layers > 1 else 0.0, batch_first=True)
        self.out = nn.Linear(s.hidden, vocabulary)
        self.out.weight = self.embed.weight  # tied (Press & Wolf 2017): fewer parameters, lower perplexity
        # Small embeddings, as Zaremba et al. and PyTorch's word_language_model start them: the
        # default N(0, 1) rows, tied to the output layer, give logits that SGD at lr 20 blows up.
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        nn.init.zeros_(self.out.bias)

    def features(self, ids: torch.Tensor, state=None):
        """What the output layer reads at each position [B, T, H], and the LSTM state."""
        h, state = self.lstm(self.drop(self.embed(ids)), state)
        return self.drop(h), state

    def forward(self, ids: torch.Tensor, state=None):
        """Next-token logits [B, T, V] for token ids [B, T], and the LSTM state."""
        features, state = self.features(ids, state)
        return self.out(features), state


class Words:
    """Token ids of the language model: every word of the training file (``<unk>`` included) and ``<eos>``."""

    def __init__(self, sentences: list[list[str]]):
        self.words = sorted({w for s in sentences for w in s} | {EOS})
        self.ids = {w: i for i, w in enumerate(self.words)}

    def encode(self, sentence: list[str]) -> list[int]:
        return [self.ids.get(w, self.ids["<unk>"]) for w in sentence]


def stream(sentences: list[list[str]], words: Words) -> torch.Tensor:
    """The sentences as one token stream, each followed by ``<eos>``."""
    return torch.tensor([i for s in sentences for i in words.encode(s) + [words.ids[EOS]]])


def train_epoch(model: LanguageModel, data: torch.Tensor, s: OracleSettings, lr: float) -> int:
    """One pass over ``data`` in ``s.batch`` parallel streams, ``s.bptt`` tokens at a time; returns the steps taken."""
    model.train()
    columns = data[: len(data) // s.batch * s.batch].view(s.batch, -1)
    state, steps = None, 0
    for start in range(0, columns.shape[1] - 1, s.bptt):
        x = columns[:, start:start + s.bptt]
        y = columns[:, start + 1:start + 1 + s.bptt]
        x = x[:, :y.shape[1]]
        state = tuple(t.detach() for t in state) if state is not None else None
        logits, state = model(x, state)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        model.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), s.clip)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-lr)
        steps += 1
    return steps


@torch.no_grad()
def perplexity(model: LanguageModel, data: torch.Tensor, bptt: int = 35) -> float:
    """Per-token perplexity of one stream, read left to right with the state carried."""
    model.eval()
    x, total, state = data.view(1, -1), 0.0, None
    for start in range(0, x.shape[1] - 1, bptt):
        ids, target = x[:, start:start + bptt], x[:, start + 1:start + 1 + bptt]
        logits, state = model(ids[:, :target.shape[1]], state)
        total += nn.functional.cross_entropy(logits[0], target[0], reduction="sum").item()
    return math.exp(total / (x.shape[1] - 1))


@torch.no_grad()
def log_likelihoods(model: LanguageModel, sentences: list[list[int]], starts: list[int], eos: int) -> torch.Tensor:
    """log P of each token-id sentence's tokens from index ``starts[i]`` on, and of the ``<eos>``
    after it, read as ``<eos> sentence <eos>``. Candidates that differ from a position on share the
    probability of the tokens before it, so leaving those out keeps their order and saves most of
    the output layer's work."""
    model.eval()
    longest = max(len(s) for s in sentences) + 1
    ids = torch.full((len(sentences), longest + 1), eos)
    mask = torch.zeros(len(sentences), longest, dtype=torch.bool)
    for i, (s, start) in enumerate(zip(sentences, starts)):
        ids[i, 1:len(s) + 1] = torch.tensor(s, dtype=torch.long)
        mask[i, start:len(s) + 1] = True  # position j predicts token j + 1: the sentence's token j
    features, _ = model.features(ids[:, :-1])
    token = model.out(features[mask]).log_softmax(-1).gather(-1, ids[:, 1:][mask].unsqueeze(-1)).squeeze(-1)
    return torch.zeros(mask.shape).masked_scatter(mask, token).sum(1)


class Oracle:
    """Chooses each query's word by the language model. ``scores`` remembers every (sentence, its
    word, candidate) it scored, and may be shared by the tasks of one test file."""

    def __init__(self, model: LanguageModel, words: Words, source: ptb.SentenceSource, shots: int,
                 scores: dict[tuple[int, str, str], float] | None = None):
        self.model, self.words, self.source, self.shots = model, words, source, shots
        self.scores = {} if scores is None else scores

    def episode_accuracy(self, episode: Episode) -> float:
        queries = [(word, s) for word, sentences in zip(episode.classes, episode.payload) for s in sentences[self.shots:]]
        todo = sorted({(s, word, c) for word, s in queries for c in episode.classes} - self.scores.keys())
        if todo:
            filled = [self.words.encode([c if w == word else w for w in self.source.sentences[s]]) for s, word, c in todo]
            starts = [self.source.sentences[s].index(word) for s, word, _ in todo]
            for key, value in zip(todo, log_likelihoods(self.model, filled, starts, self.words.ids[EOS]).tolist()):
                self.scores[key] = value
        right = [max(episode.classes, key=lambda c: self.scores[(s, word, c)]) == word for word, s in queries]
        return sum(right) / len(right)


def run_oracle(task_names: list[str], root: Path, out: Path, s: OracleSettings, threads: int | None,
               echo=print) -> list[RunFolder]:
    """Trains the language model once and writes one run folder per task under ``out``."""
    tasks = [get_task(name) for name in task_names]
    wrong = [t.name for t in tasks if t.dataset != ptb.DATASET]
    if wrong:
        raise UserError(f"the language-model oracle is for the Penn Treebank tasks, not {', '.join(wrong)}")
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    with torch_threads(threads):
        corpus = {split: ptb.sentences_of(raw, name) for (split, raw), name in zip(ptb.read_corpus(root).items(), ptb.FILES.values())}
        words = Words(corpus["train"])
        data = {split: stream(sentences, words) for split, sentences in corpus.items()}
        if s.max_tokens:
            data["train"] = data["train"][: s.max_tokens]
        torch.manual_seed(s.seed)
        model = LanguageModel(len(words.words), s)
        best, best_state, best_epoch, lr, curve, steps = math.inf, None, 0, s.lr, [], 0
        train_start = time.perf_counter()
        for epoch in range(1, s.epochs + 1):
            steps += train_epoch(model, data["train"], s, lr)
            valid = perplexity(model, data["val"], s.bptt)
            curve.append({"epoch": epoch, "iteration": steps, "valid_perplexity": valid, "lr": lr,
                          "train_seconds": time.perf_counter() - train_start})
            echo(f"epoch {epoch}: validation perplexity {valid:.1f} (lr {lr:g})")
            if valid < best:
                best, best_state, best_epoch = valid, {k: v.clone() for k, v in model.state_dict().items()}, epoch
            else:
                lr /= 4
        train_seconds, train_cpu = time.perf_counter() - train_start, time.process_time() - cpu_start
        if best_state is None:
            raise RunFailed(f"the language model diverged (validation perplexity {curve[-1]['valid_perplexity']:g}); try a lower lr")
        model.load_state_dict(best_state)
        test_perplexity = perplexity(model, data["test"], s.bptt)
        echo(f"epoch {best_epoch} chosen on validation; test perplexity {test_perplexity:.1f}")
        shapes = {(t.vocabulary, t.sequence_length) for t in tasks}  # the PTB tasks share one: the files are read once more
        by_shape = {shape: ptb.ptb_sources(root, *shape) for shape in shapes}
        sources = {t.name: by_shape[(t.vocabulary, t.sequence_length)] for t in tasks}
        folders, scores = [], {"val": {}, "test": {}}  # one test file: the tasks share what was scored
        for task in tasks:
            folders.append(_write_run(task, sources[task.name], model, words, s, out, curve, best_epoch,
                                      {"valid_perplexity": best, "test_perplexity": test_perplexity},
                                      train_seconds, train_cpu, wall_start, scores))
            echo(f"{task.name}: {folders[-1].summary().value:.4f} -> {folders[-1].path}")
    return folders


def _write_run(task, sources: dict, model: LanguageModel, words: Words, s: OracleSettings, out: Path, curve: list[dict],
               best_epoch: int, perplexities: dict, train_seconds: float, train_cpu: float, wall_start: float,
               scores: dict) -> RunFolder:
    config = {"method": METHOD, "task": task.name, "profile": PROFILE, "tag": "", "seed": s.seed, "device": "cpu",
              "eval": {"episodes": s.episodes, "seed": EVAL_SEED}, "method_settings": asdict(s)}
    RunFolder.check_results(out)
    folder = RunFolder.create(out, config)
    folder.write_config(config)
    folder.write_environment({**environment(torch.device("cpu")), "data": sources["test"].identity})
    val_oracle = Oracle(model, words, sources["val"], task.shots, scores["val"])
    val_accuracy = [val_oracle.episode_accuracy(e) for e in eval_episodes(sources["val"], task, "val", task.val_episodes, EVAL_SEED)]
    val_rows = [dict(row) for row in curve]  # per epoch: its last SGD step, validation perplexity, lr
    val_rows[best_epoch - 1]["accuracy"] = sum(val_accuracy) / len(val_accuracy)  # the chosen model's, on the task's validation episodes
    for row in val_rows:
        row.setdefault("accuracy", math.nan)
    folder.write_curves([], val_rows)
    oracle, test_start = Oracle(model, words, sources["test"], task.shots, scores["test"]), time.perf_counter()
    episodes = eval_episodes(sources["test"], task, "test", s.episodes or task.test_episodes, EVAL_SEED)
    rows = [{"episode": i, "fingerprint": e.fingerprint, "classes": list(e.classes), "accuracy": oracle.episode_accuracy(e)}
            for i, e in enumerate(episodes)]
    test_seconds = time.perf_counter() - test_start
    mean, ci = mean_ci95([r["accuracy"] for r in rows])
    parameters = sum(p.numel() for p in model.parameters())
    summary = RunSummary(
        method=METHOD, task=task.name, profile=PROFILE, protocol=task.protocol, seed=s.seed, run=folder.name,
        metric="accuracy", metrics={"accuracy": mean, "accuracy_ci95": ci, **perplexities}, episodes=len(rows),
        method_info={"backbone": f"lstm-{s.layers}x{s.hidden}", "sees_every_word": True, "best_epoch": best_epoch},
        model={"parameters": parameters, "transductive": False}, best_iteration=curve[best_epoch - 1]["iteration"],
        best_val=val_rows[best_epoch - 1]["accuracy"], iterations=curve[-1]["iteration"],
        budget=Budget(iterations=curve[-1]["iteration"], budget_seconds=0.0, clock="wall", patience=0, stopped_by="iterations",
                      best_at_last_validation=best_epoch == len(curve)),
        train_seconds=train_seconds, train_cpu_seconds=train_cpu, seconds_per_iteration=train_seconds / curve[-1]["iteration"],
        episodes_per_second=0.0, test_ms_per_episode=1000 * test_seconds / len(rows),
        wall_seconds=time.perf_counter() - wall_start, peak_memory_bytes=0, peak_memory_kind="not measured", device="cpu",
        resumed=False, finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        load_average_end=os.getloadavg()[0], task_version=task.version,
    )
    folder.finish(rows, summary)
    return folder
