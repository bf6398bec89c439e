"""Appearance descriptors, tracks, the main subject of a photo, and the choice by reference photos."""

from __future__ import annotations

import numpy as np
import pytest

from poseguide import identity
from poseguide.prepare import SelectionSettings, Source, select_people

S = 128


def _pose() -> np.ndarray:
    """A standing person, crop-normalised: shoulders at y 0.3, hips 0.55, knees 0.72, ankles 0.9."""
    pose = np.zeros((33, 4), np.float32)
    joints = {0: (0.5, 0.18), 11: (0.42, 0.3), 12: (0.58, 0.3), 13: (0.38, 0.42), 14: (0.62, 0.42),
              15: (0.36, 0.53), 16: (0.64, 0.53), 23: (0.45, 0.55), 24: (0.55, 0.55),
              25: (0.45, 0.72), 26: (0.55, 0.72), 27: (0.45, 0.9), 28: (0.55, 0.9)}
    for j, (x, y) in joints.items():
        pose[j] = (x, y, 0.0, 1.0)
    return pose


def _person(top: tuple[int, int, int], legs: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A flat-coloured person: `top` above the hips, `legs` below, grey background off the mask."""
    image = np.full((S, S, 3), 128, np.uint8)
    mask = np.zeros((S, S), np.uint8)
    mask[15:118, 40:88] = 255
    image[15:int(0.55 * S), 40:88] = top
    image[int(0.55 * S):118, 40:88] = legs
    return image, mask, _pose()


RED, BLUE, GREEN, BLACK = (200, 30, 30), (30, 40, 190), (30, 160, 40), (20, 20, 20)


def test_appearance_holds_each_part_colour_and_nothing_for_unseen_parts():
    image, mask, pose = _person(RED, BLUE)
    pose[[25, 26, 27, 28], 3] = 0.0  # knees and ankles not visible: no thighs, no shins
    d = identity.appearance(image, mask, pose)
    names = [name for name, _, _ in identity.PARTS]
    assert d.shape == identity.DESCRIPTOR_SHAPE
    assert d[names.index("torso")].sum() == pytest.approx(1.0)
    assert d[names.index("thighs")].sum() == 0 and d[names.index("shins")].sum() == 0
    # the torso is one colour: one bin holds it all but the row where it meets the legs
    assert d[names.index("torso")].max() > 0.9


def test_distance_is_zero_for_the_same_look_and_one_for_none_in_common():
    red_blue = identity.appearance(*_person(RED, BLUE))
    assert identity.appearance_distance(red_blue, red_blue) == pytest.approx(0.0, abs=1e-6)
    green_black = identity.appearance(*_person(GREEN, BLACK))
    assert identity.appearance_distance(red_blue, green_black) == pytest.approx(1.0, abs=1e-6)
    # swapping the colours of top and legs is a different person, though the colours are the same
    blue_red = identity.appearance(*_person(BLUE, RED))
    assert identity.appearance_distance(red_blue, blue_red) > 0.6
    # no part shown by both: nothing to compare, so as far apart as can be
    assert identity.appearance_distance(red_blue, np.zeros_like(red_blue)) == 1.0


def test_nearest_reference_distance_takes_the_closest_reference():
    looks = np.stack([identity.appearance(*_person(c, BLACK)) for c in (RED, GREEN, BLUE)])
    d = identity.nearest_reference_distance(looks, looks[[2, 0]])
    assert d[0] == pytest.approx(0.0, abs=1e-6) and d[2] == pytest.approx(0.0, abs=1e-6)
    assert 0.3 < d[1] < 1.0  # green top shares only the black legs with both references


def test_tracks_follow_two_walkers_through_a_gap_and_not_across_a_jump():
    red = identity.appearance(*_person(RED, BLUE))
    green = identity.appearance(*_person(GREEN, BLACK))
    frames, boxes, looks = [], [], []
    for f in range(10):
        if f not in (4, 5):  # the red walker is missed for two frames
            frames.append(f), boxes.append((100 + 5 * f, 50, 100)), looks.append(red)
        frames.append(f), boxes.append((400 - 5 * f, 60, 100)), looks.append(green)
    frames.append(10), boxes.append((700, 300, 100)), looks.append(red)  # far away: someone new
    tracks = identity.assign_tracks(np.array(frames), np.array(boxes, float), np.stack(looks))
    by_colour = {0: [], 1: []}
    for t, look in zip(tracks[:-1], looks[:-1]):
        by_colour[int(look is green)].append(int(t))
    assert set(by_colour[0]) == {0} and set(by_colour[1]) == {1}
    assert tracks[-1] == 2


def test_tracks_do_not_link_boxes_that_overlap_but_look_unlike():
    red = identity.appearance(*_person(RED, BLUE))
    green = identity.appearance(*_person(GREEN, BLACK))
    tracks = identity.assign_tracks(np.array([0, 1]), np.array([(100, 50, 100), (102, 50, 100)], float), np.stack([red, green]))
    assert tracks.tolist() == [0, 1]


def test_tracks_end_where_the_box_jumps_in_size_but_follow_a_walker_growing_steadily():
    # someone steps in front: the crop suddenly frames a box half as big again, same colours
    look = identity.appearance(*_person(RED, BLUE))
    frames = list(range(8))
    boxes = [(100 + 4 * f, 50, 100) for f in range(4)] + [(100 + 4 * f - 25, 25, 150) for f in range(4, 8)]
    tracks = identity.assign_tracks(np.array(frames), np.array(boxes, float), np.stack([look] * 8))
    assert tracks.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    # a walker coming towards the camera grows 6% a frame: one track all the way
    boxes = [(100, 50, 100 * 1.06 ** f) for f in range(8)]
    tracks = identity.assign_tracks(np.array(frames), np.array(boxes, float), np.stack([look] * 8))
    assert tracks.tolist() == [0] * 8


def test_main_subject_is_large_and_central():
    # a large person at the centre beats a slightly larger one in the corner, not a much larger one
    centre, corner = (300, 200, 200), (0, 0, 240)
    assert identity.main_subject(np.array([corner, centre]), (800, 600)) == 1
    assert identity.main_subject(np.array([centre, (0, 0, 500)]), (800, 600)) == 1


def _entries(frames: list[int], source: str = "v.avi") -> list[dict]:
    return [{"source": source, "frame": f, "person": 0, "box": [0, 0, 10], "source_width": 100, "source_height": 100}
            for f in frames]


def test_reference_keeps_whole_tracks_and_grows_through_lookalike_tracks():
    red = identity.appearance(*_person(RED, BLUE))
    dark_red = identity.appearance(*_person((150, 20, 40), BLUE))  # the same coat in shade
    green = identity.appearance(*_person(GREEN, BLACK))
    # track 0: the person in light; track 1: in shade (far from the red reference, near track 0's
    # shaded frames); track 2: someone else walking beside track 0 in the same frames.
    looks = np.stack([red, red, dark_red, dark_red, dark_red, dark_red, green, green, green])
    tracks = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    frames = [0, 1, 2, 10, 11, 12, 0, 1, 2]
    entries = _entries(frames)
    sources = {"v.avi": Source("v.avi", "video", 100, 10.0)}
    reference = [{"appearance": red}]
    # Three people known to be others are too few to measure look-alikes by: the default unit.
    raw = float(identity.appearance_distance(red, dark_red))
    limit = raw / identity.DEFAULT_LOOKALIKE_DISTANCE - 0.01  # shade alone is over the limit
    chosen = select_people(entries, looks, tracks, sources, SelectionSettings(reference_distance=limit), reference)
    kept = [not why for why in chosen["why"]]
    assert kept == [True] * 6 + [False] * 3
    assert "from the reference" in chosen["why"][6]
    assert chosen["distance"][0] == pytest.approx(0.0, abs=1e-6)


def test_without_references_a_photo_keeps_its_main_subject_and_tracks_can_be_chosen():
    looks = np.zeros((5, *identity.DESCRIPTOR_SHAPE), np.float32)
    entries = [
        {"source": "a.jpg", "frame": 0, "person": 0, "box": [0, 0, 100], "source_width": 800, "source_height": 600},
        {"source": "a.jpg", "frame": 0, "person": 1, "box": [300, 200, 200], "source_width": 800, "source_height": 600},
        *_entries([0, 1, 0]),
    ]
    sources = {"a.jpg": Source("a.jpg", "image"), "v.avi": Source("v.avi", "video", 100, 10.0)}
    tracks = np.array([-1, -1, 0, 0, 1])
    chosen = select_people(entries, looks, tracks, sources, SelectionSettings(), [])
    assert [bool(w) for w in chosen["why"]] == [True, False, False, False, False]
    assert "main subject" in chosen["why"][0]
    everyone = select_people(entries, looks, tracks, sources, SelectionSettings(all_people=True), [])
    assert not any(everyone["why"])
    picked = select_people(entries, looks, tracks, sources, SelectionSettings(tracks=(1,)), [])
    assert [bool(w) for w in picked["why"]] == [True, False, True, True, False]
    long_only = select_people(entries, looks, tracks, sources, SelectionSettings(min_track_frames=2), [])
    assert [bool(w) for w in long_only["why"]] == [True, False, False, False, True]
    assert "--min-track-frames 2" in long_only["why"][4]


def test_lookalike_distance_counts_only_people_known_to_be_someone_else():
    # 25 photos of two people each: the nearer one may be the person, the farther one is not.
    distances = np.array([0.1, 0.6] * 25)
    groups = np.repeat(np.arange(25), 2)
    distance, known = identity.lookalike_distance(distances, groups)
    assert distance == pytest.approx(0.6) and known == 25
    # alone in every photo: nobody is known to be someone else
    assert identity.lookalike_distance(distances, np.arange(50)) == (identity.DEFAULT_LOOKALIKE_DISTANCE, 0)
    # too few known others to say where look-alikes begin
    few = identity.MIN_KNOWN_OTHERS - 1
    assert identity.lookalike_distance(distances[: 2 * few], groups[: 2 * few]) == (identity.DEFAULT_LOOKALIKE_DISTANCE, few)


def _photos(people: list[list[np.ndarray]]) -> tuple[list[dict], np.ndarray, dict]:
    """Entries, looks and sources for photos holding the given looks, one photo per inner list."""
    entries, looks, sources = [], [], {}
    for k, photo in enumerate(people):
        name = f"p{k}.jpg"
        sources[name] = Source(name, "image")
        for j, look in enumerate(photo):
            entries.append({"source": name, "frame": 0, "person": j, "box": [10 + 40 * j, 10, 30],
                            "source_width": 200, "source_height": 100})
            looks.append(look)
    return entries, np.stack(looks), sources


def test_one_limit_keeps_a_look_nobody_else_wears_and_drops_it_where_the_crowd_wears_it():
    reference = identity.appearance(*_person(RED, BLUE))
    red_black = identity.appearance(*_person(RED, BLACK))  # the jacket, other trousers
    green_black = identity.appearance(*_person(GREEN, BLACK))
    # Among people in green, red over black trousers is the nearest anyone comes: kept.
    entries, looks, sources = _photos([[red_black, green_black]] * 25)
    chosen = select_people(entries, looks, np.full(len(looks), -1), sources, SelectionSettings(), [{"appearance": reference}])
    assert [not why for why in chosen["why"]] == [True, False] * 25
    assert chosen["lookalike"] == (pytest.approx(1.0), 25)
    assert chosen["distance"][0] == pytest.approx(float(identity.appearance_distance(reference, red_black)))
    # Where the people known to be others wear it, beside the person in every photo, it is no match.
    entries, looks, sources = _photos([[reference, red_black]] * 25 + [[red_black]])
    chosen = select_people(entries, looks, np.full(len(looks), -1), sources, SelectionSettings(), [{"appearance": reference}])
    assert [not why for why in chosen["why"]] == [True, False] * 25 + [False]
    assert chosen["distance"][-1] == pytest.approx(1.0)
