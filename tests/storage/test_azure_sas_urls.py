"""A direct-download URL never carries the storage's own SAS (issue 25, item 10).

An Azure ``account_url`` (or a connection string's ``BlobEndpoint``) may hold a SAS in its
query string. The blob client repeats it in every blob URL, so the signed URL handed to a
user carried an account-wide read/write/delete token beside the one-blob read SAS.
"""

from urllib.parse import parse_qs, urlsplit

import pytest

from storage.backends import get_backend
from storage.models import StorageConfig

CHECKPOINT = "0b0e4c52-1b6f-4a4c-9a43-5f1b9c2f6d11"
#: Azurite's published development key: signing is local, nothing is contacted.
AZURE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@pytest.mark.parametrize(
    "fields",
    [
        {
            "account_url": "https://acct.blob.core.windows.net/?sv=2024&ss=b&sp=rwdl&sig=ACCOUNTWIDE",
            "credential": AZURE_KEY,
        },
        {
            "connection_string": (
                f"AccountName=acct;AccountKey={AZURE_KEY};"
                "BlobEndpoint=https://acct.blob.core.windows.net/?sv=2024&sp=rwdl&sig=ACCOUNTWIDE"
            )
        },
    ],
)
def test_the_signed_url_carries_only_the_blobs_read_sas(fields):
    config = StorageConfig(name="az", type="azure", container="c", **fields)
    url = get_backend(config).signed_url(CHECKPOINT, "weights.bin", 600)
    assert "ACCOUNTWIDE" not in url
    parsed = urlsplit(url)
    assert parsed.path.endswith(f"/c/{CHECKPOINT}/weights.bin")
    query = parse_qs(parsed.query)
    assert query["sp"] == ["r"]  # read, this blob only
    assert len(query["sig"]) == 1
