"""The ServiceIndex built from botocore's installed models, and the index type itself."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import botocore
import botocore.loaders
import pytest

from proxy import service_models
from proxy.core.model import Protocol
from proxy.core.services import OperationInfo, ServiceIndex, ServiceInfo, target_family
from proxy.service_models import load_service_index, operations_from_model, service_info


@pytest.fixture(scope="module")
def index() -> ServiceIndex:
    return load_service_index()


def test_metadata_matches_a_full_parse_of_the_model(index: ServiceIndex) -> None:
    loader = botocore.loaders.create_loader()
    for name in ("storagegateway", "dynamodb", "sts", "s3", "cloudwatch", "ec2", "lambda"):
        model = loader.load_service_model(name, "service-2")
        assert index.services[name] == service_info(name, model["metadata"])


def test_known_services(index: ServiceIndex) -> None:
    sgw = index.services["storagegateway"]
    assert (sgw.protocol, sgw.json_version, sgw.target_prefix, sgw.signing_name) == (
        Protocol.JSON,
        "1.1",
        "StorageGateway_20130630",
        "storagegateway",
    )
    ddb = index.services["dynamodb"]
    assert (ddb.json_version, ddb.target_prefix) == ("1.0", "DynamoDB_20120810")
    sts = index.services["sts"]
    assert (sts.protocol, sts.xml_namespace) == (Protocol.QUERY, "https://sts.amazonaws.com/doc/2011-06-15/")
    # S3 Control signs as "s3" with botocore's S3SigV4Auth: S3's path and payload rules apply to it too.
    assert index.services["s3"].is_s3 and index.services["s3control"].is_s3
    assert not index.services["sts"].is_s3
    assert index.services["ec2"].protocol is Protocol.EC2
    # A model preferring a protocol the proxy does not speak falls back to the next one it lists.
    cloudwatch = index.services["cloudwatch"]
    assert cloudwatch.protocols[0] == "smithy-rpc-v2-cbor"
    assert cloudwatch.protocol is Protocol.JSON and cloudwatch.speaks(Protocol.QUERY)
    assert len(index.services) > 300


def test_lookups(index: ServiceIndex) -> None:
    assert [s.name for s in index.by_target_prefix("StorageGateway_20120630")] == ["storagegateway"]
    assert [s.name for s in index.by_target_prefix("StorageGateway_20130630")] == ["storagegateway"]
    assert index.by_target_prefix("NoSuchService_20120630") == ()
    assert {s.name for s in index.by_signing_name("s3")} >= {"s3", "s3control"}
    assert [s.name for s in index.by_endpoint_prefix("sts")] == ["sts"]
    assert target_family("StorageGateway_20120630") == "StorageGateway"
    assert target_family("AmazonSSM") == "AmazonSSM"


def test_operations_are_lazy_and_cached(index: ServiceIndex) -> None:
    operations = index.operations("storagegateway")
    assert "ListGateways" in operations and "ActivateGateway" in operations
    assert index.operations("storagegateway") is operations
    assert index.operations("no-such-service") == {}


def test_operations_from_model_required_members() -> None:
    path = Path(botocore.__file__).parent / "data" / "s3" / "2006-03-01" / "service-2.json.gz"
    model = json.loads(gzip.decompress(path.read_bytes()))
    operations = operations_from_model(model)
    upload_part_copy = operations["UploadPartCopy"]
    assert upload_part_copy.http_method == "PUT"
    assert upload_part_copy.path_template == ("{Bucket}", "{Key+}")
    assert set(upload_part_copy.required_query) == {("partNumber", None), ("uploadId", None)}
    assert upload_part_copy.required_headers == ("x-amz-copy-source",)
    assert operations["ListObjectsV2"].required_query == (("list-type", "2"),)
    assert operations["GetBucketLifecycle"].deprecated


def test_hand_made_index() -> None:
    index = ServiceIndex.build(
        [ServiceInfo(name="demo", protocol=Protocol.REST_JSON, signing_name="demo", endpoint_prefix="demo")],
        {"demo": [OperationInfo.from_http("GetThing", "GET", "/things/{Id}")]},
    )
    assert index.match_rest_operation("demo", "GET", ["things", "7"], {}, frozenset()) == ("GetThing", 23)
    assert index.match_rest_operation("demo", "PUT", ["things", "7"], {}, frozenset())[0] is None


def test_signing_name_follows_the_endpoint_credential_scope() -> None:
    """botocore signs Import/Export as `IngestionService` (endpoints.json credentialScope), not the
    endpoint prefix: the index must agree or the verifier refuses what AWS accepts."""
    from proxy.service_models import credential_scope_services, load_service_index

    endpoints = {
        "partitions": [
            {
                "services": {
                    "importexport": {
                        "endpoints": {"aws-global": {"credentialScope": {"service": "IngestionService"}}}
                    }
                }
            }
        ]
    }
    assert credential_scope_services(endpoints) == {"importexport": "IngestionService"}
    index = load_service_index()
    assert [s.name for s in index.by_signing_name("IngestionService")] == ["importexport"]
    assert index.service("importexport").signing_name == "IngestionService"


# -- the precomputed index (proxy/service_index.txt) -----------------------------------------------


@pytest.fixture(scope="module")
def botocore_models() -> service_models.BotocoreModels:
    return service_models.BotocoreModels()


def test_index_file_is_what_the_installed_botocore_gives(
    botocore_models: service_models.BotocoreModels,
) -> None:
    """The committed file is exactly what `python -m proxy.service_models` writes from this botocore."""
    written = service_models.INDEX_PATH.read_text()
    header = json.loads(written.split("\n", 1)[0])
    assert header["botocore"] == botocore.__version__, (
        f"{service_models.INDEX_PATH} is from botocore {header['botocore']}, {botocore.__version__} is "
        "installed: run `python -m proxy.service_models` and commit the file"
    )
    assert service_models.index_text(botocore_models) == written


def test_index_from_the_file_equals_the_one_read_from_botocore(
    botocore_models: service_models.BotocoreModels,
) -> None:
    """Every service's metadata and every operation, for all ~450 services: the file loses nothing."""
    with service_models.INDEX_PATH.open("rb") as lines:
        precomputed = service_models.index_from_lines(lines)
    from_botocore = service_models.index_from_botocore(botocore_models)
    assert precomputed.services == from_botocore.services
    for name in from_botocore.services:
        assert precomputed.operations(name) == from_botocore.operations(name), name
    s3 = precomputed.operations("s3")
    assert s3["UploadPartCopy"].required_headers == ("x-amz-copy-source",)
    assert s3["ListObjectsV2"].required_query == (("list-type", "2"),)
    assert s3["GetBucketLifecycle"].deprecated


def test_serving_reads_the_file_without_botocore_loader(tmp_path: Path) -> None:
    """`sigwatch run`'s index comes from the file: botocore's loader (urllib3, dateutil, the endpoint
    data, whole models) is never imported, even once a service's operations are asked for."""
    script = (
        "import sys\n"
        "from proxy.service_models import load_service_index, precomputed_index_usable\n"
        "assert precomputed_index_usable() is None, precomputed_index_usable()\n"
        "index = load_service_index()\n"
        "assert 'PutObject' in index.operations('s3')\n"
        "assert index.service('importexport').signing_name == 'IngestionService'\n"
        "print(sorted(m for m in sys.modules if m.startswith(('botocore.', 'urllib3', 'dateutil'))))\n"
    )
    env = {**os.environ, "HOME": str(tmp_path)}  # no ~/.aws/models
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_file_not_used_where_botocore_would_load_something_else(tmp_path: Path) -> None:
    customer = tmp_path / ".aws" / "models"
    assert service_models.precomputed_index_usable(customer_data=customer) is None
    customer.mkdir(parents=True)
    assert "may add or override" in (service_models.precomputed_index_usable(customer_data=customer) or "")
    other = tmp_path / "index.txt"
    first, rest = service_models.INDEX_PATH.read_text().split("\n", 1)
    other.write_text(json.dumps({**json.loads(first), "botocore": "1.0.0"}) + "\n" + rest)
    reason = service_models.precomputed_index_usable(other, customer_data=tmp_path / "none")
    assert reason is not None and "built from botocore 1.0.0" in reason
    reason = service_models.precomputed_index_usable(
        tmp_path / "missing.txt", customer_data=tmp_path / "none"
    )
    assert reason is not None and "missing.txt" in reason


def test_truncated_index_file_is_refused() -> None:
    lines = service_models.INDEX_PATH.read_bytes().splitlines(keepends=True)
    with pytest.raises(ValueError, match="services where the header says"):
        service_models.index_from_lines(lines[:-1])
    with pytest.raises(ValueError, match="format"):
        service_models.index_from_lines([b'{"format": 99}\n'])
