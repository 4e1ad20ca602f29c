"""The numpy versions of the default model's fitted scikit-learn objects give the same numbers, bitwise."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer

from medcode.model.trained.classifier import ClassifierConfig, DocumentClassifier
from medcode.model.trained.numeric import TfidfSims, TreeRanker, pop_ranker, ranker_arrays

DOCS = [
    "Type 2 diabetes mellitus with hypertension; metformin continued.",
    "Community acquired pneumonia of the right lower lobe, treated with ceftriaxone.",
    "Patient denies chest pain. Essential hypertension, well controlled.",
    "Café-au-lait spots; neurofibromatosis suspected. Résumé of the naïve patient's history.",
    "Acute kidney failure after contrast; creatinine rising. Hypertension.",
    "Iron deficiency anemia, ferritin low, pneumonia resolved.",
]


def _rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Float32 rows with two categorical columns (small integer codes) and missing values."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    x[:, 1] = rng.choice([-1.0, 0.0, 2.0, 3.0, 7.0], size=n)
    x[:, 4] = rng.integers(0, 12, size=n)
    x[rng.random(x.shape) < 0.05] = np.nan
    y = ((np.nan_to_num(x[:, 0]) + (x[:, 1] == 2.0) + 0.3 * rng.normal(size=n)) > 0.5).astype(int)
    return x, y


@pytest.mark.parametrize("categorical", [True, False])
def test_tree_ranker_equals_scikit_learn_bitwise(categorical: bool) -> None:
    x, y = _rows(600, seed=1)
    model = HistGradientBoostingClassifier(
        max_iter=40,
        max_leaf_nodes=15,
        min_samples_leaf=10,
        categorical_features=[1, 4] if categorical else None,
        random_state=0,
    ).fit(x, y)
    test, _ = _rows(400, seed=2)
    test[:5, 1] = [5.0, -3.0, np.nan, 99.0, 0.0]  # unknown, negative and missing categories
    ranker = TreeRanker(dict(TreeRanker.arrays_of(model)))
    assert np.array_equal(ranker.predict_proba(test), model.predict_proba(test))
    # through the pack's keys and back
    stored = ranker_arrays(model)
    again = pop_ranker({**stored, "dual": np.zeros(1)})
    assert again is not None and np.array_equal(again.predict_proba(test), model.predict_proba(test))
    assert ranker_arrays(again).keys() == stored.keys()


def test_tree_ranker_probability_is_scipys_expit_bitwise_over_the_whole_range() -> None:
    # numpy's vectorised exp differs from the C library's in the last bit for about 2% of values on some
    # CPUs; scikit-learn's probability goes through scipy's expit, which uses the C library's
    from scipy.special import expit

    x, y = _rows(200, seed=3)
    ranker = TreeRanker(dict(TreeRanker.arrays_of(HistGradientBoostingClassifier(max_iter=3).fit(x, y))))
    raw = np.concatenate([np.random.default_rng(4).normal(scale=6, size=20_000), [-800.0, 800.0, 0.0]])
    ranker.raw = lambda rows: raw  # type: ignore[method-assign]
    proba = ranker.predict_proba(np.zeros((len(raw), 6)))
    assert np.array_equal(proba[:, 1], expit(raw))
    assert np.array_equal(proba[:, 0], 1.0 - expit(raw))


def test_models_without_a_numpy_version_keep_only_their_object() -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = _rows(50, seed=3)
    assert ranker_arrays(LogisticRegression().fit(np.nan_to_num(x), y)) == {}
    assert pop_ranker({"dual": np.zeros(1)}) is None


def test_tfidf_similarities_equal_scikit_learn_bitwise() -> None:
    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2),
        min_df=1,
        sublinear_tf=True,
        strip_accents="unicode",
        dtype=np.float32,
    )
    train = vectorizer.fit_transform(DOCS).tocsr()
    sims = TfidfSims(TfidfSims.arrays_of(vectorizer, train))
    notes = [
        "Hypertension and type 2 diabetes; hypertension again. Café résumé naïve.",
        "zzz qqq xyzzy",
        "",
        "PNEUMONIA pneumonia right lower lobe",
    ]
    reference = np.asarray((vectorizer.transform(notes).tocsr() @ train.T).todense(), dtype=np.float32)
    ours = sims.similarities(notes)
    assert ours.dtype == np.float32
    assert np.array_equal(ours, reference)
    assert ours[0].max() > 0 and not ours[1].any()
    columns, values = sims.transform_one(notes[0])
    row = vectorizer.transform(notes[:1]).tocsr()
    assert np.array_equal(columns, row.indices) and np.array_equal(values, row.data)


def test_tfidf_with_options_numpy_does_not_run_is_refused() -> None:
    vectorizer = TfidfVectorizer(analyzer="char").fit(DOCS)
    with pytest.raises(ValueError, match="no numpy version"):
        TfidfSims.arrays_of(vectorizer, vectorizer.transform(DOCS))


def test_classifier_from_arrays_scores_like_the_fitted_one() -> None:
    labels = [["E11.9", "I10"], ["J18.9"], ["I10"], ["Q85.01"], ["N17.9", "I10"], ["D50.9", "J18.9"]]
    clf = DocumentClassifier(ClassifierConfig(min_count=1, knn_k=3)).fit(DOCS, labels, None)
    arrays, objects, meta = clf.state()
    from_arrays = DocumentClassifier.from_state(arrays, {}, meta)
    assert from_arrays.vectorizer is None and from_arrays.tfidf is not None
    from_objects = DocumentClassifier.from_state(
        {k: v for k, v in arrays.items() if not k.startswith("tfidf_")}, objects, meta
    )
    assert from_objects.tfidf is None
    notes = ["hypertension with diabetes", "pneumonia, anemia and kidney failure"]
    assert from_arrays.scores(notes, None) == clf.scores(notes, None) == from_objects.scores(notes, None)
    # saved again, a classifier read from arrays stores the same arrays (and no objects)
    arrays2, objects2, _ = from_arrays.state()
    assert objects2 == {} and arrays2.keys() == arrays.keys()
    assert all(np.array_equal(arrays2[k], arrays[k]) for k in arrays)
