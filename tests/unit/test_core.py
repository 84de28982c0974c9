"""anycost.core: the machine's measurements on disk and the timing helpers."""
from anycost.core import measurements
from anycost.core.timing import machine_key, p95


def test_measurements_round_trip_and_damage(tmp_path):
    path = tmp_path / "calibration" / "latency.json"
    assert measurements.read(path) is None and measurements.read(None) is None
    measurements.write(path, {"latency": [[0.5, 32, 1.25]]})
    assert measurements.read(path) == {"latency": [[0.5, 32, 1.25]]}
    assert [p.name for p in path.parent.iterdir()] == ["latency.json"]        # no temporary file left
    path.write_text('{"latency": [[0.5, 32')                                  # a crash mid-write elsewhere
    assert measurements.read(path) is None
    measurements.write(None, {"ignored": True})                               # no folder: nothing kept


def test_p95_and_machine_key():
    assert p95([5.0]) == 5.0 and p95(range(1, 101)) == 95 and p95([3, 1, 2]) == 3
    key = machine_key()
    assert "t-torch" in key and " " not in key and "/" not in key
