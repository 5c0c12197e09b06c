"""Every flagfile configures what it configured before the configuration was redesigned.

The fixtures (`tests/fixtures/configs/*.json`) hold, for each flagfile of `configs/` read alone
and with a set of user overrides, every typed config and the flags.txt a run records; they were
written before the flags were derived from the config dataclasses. A default, bound or meaning
that drifts, or a flag that disappears from flags.txt, turns this red. Settings added since (a
field the fixture lacks, a flags.txt line it lacks) leave every pinned value as it was, so they
are allowed: what the fixture pins must still hold.
"""

import json
import os

import pytest

from tests import config_fixtures as fixtures


@pytest.mark.parametrize("name", fixtures.flagfiles())
def test_flagfile_configures_what_it_did(name):
    with open(os.path.join(fixtures.FIXTURES, f"{name}.json")) as f:
        expected = json.load(f)
    path = os.path.join(fixtures.CONFIGS, f"{name}.flags")
    for key, extra in fixtures.OVERRIDES.items():
        got = json.loads(json.dumps(fixtures.configs_of(path, extra)))
        for part, pinned in expected[key].items():
            if isinstance(pinned, dict):
                assert {k: got[part].get(k) for k in pinned} == pinned, (name, key, part)
            elif isinstance(pinned, list):  # flags.txt: every pinned line is still recorded
                assert sorted(set(pinned) - set(got[part])) == [], (name, key, part)
            else:
                assert got[part] == pinned, (name, key, part)


def test_every_flagfile_has_a_fixture():
    assert sorted(n[: -len(".json")] for n in os.listdir(fixtures.FIXTURES)) == fixtures.flagfiles()
