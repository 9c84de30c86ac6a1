"""The stack outputs contract: parsed once, errors name the key."""

from __future__ import annotations

import json
import re

import pytest

from contract.outputs import OutputsError, StackOutputs

COMPLETE = {
    "location": "westeurope",
    "resourceGroupName": "rg",
    "storageAccountName": "st",
    "blobEndpoint": "https://st.blob.core.windows.net/",
    "containers": {"application": "application", "input": "input", "output": "output"},
    "batchAccountName": "ba",
    "batchAccountEndpoint": "https://ba.westeurope.batch.azure.com",
    "poolId": "runner-pool",
    "poolIdentityResourceId": "/subscriptions/x/resourceGroups/rg/providers/id",
}


def test_round_trip():
    outputs = StackOutputs.from_dict(COMPLETE)
    assert outputs.containers.output == "output"
    assert outputs.local is None
    assert StackOutputs.from_dict(outputs.to_dict()) == outputs


@pytest.mark.parametrize("key", ["location", "blobEndpoint", "poolId", "batchAccountEndpoint"])
def test_a_missing_key_is_named(key):
    document = {k: v for k, v in COMPLETE.items() if k != key}
    with pytest.raises(OutputsError, match=f"output '{key}' is missing"):
        StackOutputs.from_dict(document)


def test_a_malformed_container_name_is_named():
    document = {**COMPLETE, "containers": {**COMPLETE["containers"], "input": 7}}
    with pytest.raises(OutputsError, match=re.escape("'containers.input' must be a non-empty")):
        StackOutputs.from_dict(document)


def test_the_pool_identity_is_optional():
    document = {**COMPLETE, "poolIdentityResourceId": None}
    assert StackOutputs.from_dict(document).poolIdentityResourceId is None


def test_unreadable_files(tmp_path):
    with pytest.raises(OutputsError, match="no such file"):
        StackOutputs.read(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(OutputsError, match="not readable JSON"):
        StackOutputs.read(bad)
    bad.write_text(json.dumps([1, 2]))
    with pytest.raises(OutputsError, match="expected a JSON object"):
        StackOutputs.read(bad)
