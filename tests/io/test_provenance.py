import hashlib
import json
import os

import pytest

from fmrikit.io import provenance
from fmrikit.io.provenance import file_checksum, write_sidecar


def test_checksum_full_and_fingerprint(tmp_path, monkeypatch):
    p = tmp_path / "f.bin"
    p.write_bytes(b"abc" * 1000)
    assert file_checksum(p)["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    monkeypatch.setattr(provenance, "FULL_HASH_LIMIT", 10)
    rec = file_checksum(p)
    assert "sha256" not in rec and len(rec["sha256_fingerprint"]) == 64 and rec["bytes"] == 3000


def test_sidecar_records_run(tmp_path):
    rec = write_sidecar(tmp_path / "s.json", command="x", parameters={"a": 1, "p": tmp_path}, inputs=[], seed=4)
    disk = json.loads((tmp_path / "s.json").read_text())
    assert disk == json.loads(json.dumps(rec, default=str))
    assert disk["seed"] == 4 and disk["parameters"]["p"] == str(tmp_path) and disk["versions"]["fmrikit"]
    assert disk["run_id"] != write_sidecar(tmp_path / "t.json", command="x", parameters={}, inputs=[])["run_id"]


def test_a_file_rewritten_while_it_is_read_stops_the_run(tmp_path):
    from fmrikit.errors import RunError
    from fmrikit.io.provenance import checksum_of_read, sha256_file

    path = tmp_path / "betas.h5"
    path.write_bytes(b"first")
    with checksum_of_read(path) as record:
        pass
    assert record["sha256"] == sha256_file(path)
    with pytest.raises(RunError, match="changed while it was read"):
        with checksum_of_read(path):
            (tmp_path / "new.h5").write_bytes(b"second")
            os.replace(tmp_path / "new.h5", path)  # another preprocess --overwrite
