import numpy as np
import pytest

from fmrikit.data.stimuli import CATEGORIES, SUBTYPES, StimulusSet, make_stimuli


@pytest.fixture(scope="module")
def stimuli():
    return make_stimuli(60, size=32, seed=11)


def _object_mask(size, xy, radius):
    """Pixels within the object's radius of its centre, computed from the annotations alone."""
    centres = (np.arange(size) + 0.5) / size
    return np.hypot(centres[None, :] - xy[0], centres[:, None] - xy[1]) <= radius


def test_shapes_and_dtypes():
    s = make_stimuli(7, size=48, seed=2)
    assert isinstance(s, StimulusSet)
    assert s.images.shape == (7, 48, 48, 3) and s.images.dtype == np.uint8
    assert s.category.shape == (7,) and s.category.dtype == np.int64
    assert s.object_size.shape == (7,) and s.object_size.dtype == np.float64
    assert s.object_xy.shape == (7, 2) and s.object_xy.dtype == np.float64
    assert isinstance(s.captions, list) and len(s.captions) == 7
    assert s.category.min() >= 0 and s.category.max() < len(CATEGORIES)


def test_deterministic_by_seed():
    a, b, c = make_stimuli(12, 32, seed=4), make_stimuli(12, 32, seed=4), make_stimuli(12, 32, seed=5)
    assert a.images.tobytes() == b.images.tobytes()
    np.testing.assert_array_equal(a.category, b.category)
    np.testing.assert_array_equal(a.object_xy, b.object_xy)
    assert a.captions == b.captions
    assert a.images.tobytes() != c.images.tobytes()
    assert a.captions != c.captions


def test_generator_seed_matches_integer_seed():
    a = make_stimuli(6, 32, seed=np.random.default_rng(9))
    b = make_stimuli(6, 32, seed=9)
    assert a.images.tobytes() == b.images.tobytes()


@pytest.mark.parametrize("n", [5, 10, 23])
def test_categories_balanced(n):
    counts = np.bincount(make_stimuli(n, 16, seed=n).category, minlength=len(CATEGORIES))
    assert counts.min() >= 1 and counts.max() - counts.min() <= 1


def test_captions_name_their_category(stimuli):
    for cat, caption in zip(stimuli.category, stimuli.captions):
        assert caption.strip() and caption[0].isupper() and caption.endswith(".")
        assert CATEGORIES[cat] in caption.lower()
        assert all(other not in caption.lower().split() for other in CATEGORIES if other != CATEGORIES[cat])


def test_object_geometry_in_range(stimuli):
    assert np.all((stimuli.object_xy >= 0) & (stimuli.object_xy <= 1))
    assert np.all((stimuli.object_size >= 0.15) & (stimuli.object_size <= 0.45))


def test_subtype_count_and_colour_agree_with_the_captions(stimuli):
    """The annotations the simulated brain reads are the ones the caption states."""
    numbers = {2: "two", 3: "three", 4: "four"}
    assert stimuli.subtype.dtype == np.int64 and stimuli.count.dtype == np.int64
    assert stimuli.colour.shape == (len(stimuli.images), 3) and (stimuli.colour >= 0).all() and (stimuli.colour <= 1).all()
    for cat, sub, count, caption in zip(stimuli.category, stimuli.subtype, stimuli.count, stimuli.captions):
        name = CATEGORIES[cat]
        assert 0 <= sub < len(SUBTYPES[name])
        words = caption.lower()
        if name == "scene":
            assert SUBTYPES[name][sub] in words and 0 <= count <= 4
        elif name == "text":
            assert words.startswith(f"a {SUBTYPES[name][sub]} sign") or f" {SUBTYPES[name][sub]} sign" in words
            assert f"{numbers[count]} lines of text" in words
        elif name == "food":
            assert f"{SUBTYPES[name][sub]} plate" in words and 3 <= count <= 6
        else:
            assert f"{SUBTYPES[name][sub]} {'face' if name == 'face' else 'animal'}" in words and count == 1


def test_images_not_constant(stimuli):
    assert np.all(stimuli.images.reshape(len(stimuli.images), -1).std(axis=1) > 5)


def test_face_and_text_colour_statistics_differ(stimuli):
    """Inside the object, faces are skin-toned (red above blue); signs are pale neutral or cool."""
    size = stimuli.images.shape[1]

    def red_minus_blue(cat):
        values = []
        for i in np.flatnonzero(stimuli.category == CATEGORIES.index(cat)):
            pixels = stimuli.images[i][_object_mask(size, stimuli.object_xy[i], 0.5 * stimuli.object_size[i])]
            values.append(pixels[:, 0].astype(float).mean() - pixels[:, 2].astype(float).mean())
        return np.array(values)

    face, text = red_minus_blue("face"), red_minus_blue("text")
    assert len(face) >= 10 and len(text) >= 10
    assert face.mean() > text.mean() + 30
    assert np.median(face) > np.median(text)


@pytest.mark.parametrize("kwargs", [{"n_images": 0}, {"n_images": -3}, {"n_images": 4, "size": 15}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match="n_images|size"):
        make_stimuli(**kwargs)
