"""boto3's importexport client (Query protocol) against the emulator: the job lifecycle and seed 004's
errors in the `<ErrorResponse xmlns="http://importexport.amazonaws.com/">` shape."""

from __future__ import annotations

import asyncio
from typing import Any

from emulator_functional_support import boto_client, client_error, sign_importexport_as

from proxy.service_models import load_service_index

MANIFEST = """\
manifestVersion: 2.0
bucket: import-target
deviceId: 49382
eraseDevice: yes
returnAddress:
    name: Jane Roe
    street1: 1200 12th Ave S.
    city: Seattle
    stateOrProvince: WA
    postalCode: 98114
    country: USA
"""


def importexport_client(url: str) -> Any:
    """An importexport client signing with the service name sigwatch's verifier expects."""
    client = boto_client("importexport", url)
    service = load_service_index().service("importexport")
    assert service is not None
    sign_importexport_as(client, service.signing_name or "importexport")
    return client


def lifecycle(url: str) -> list[dict[str, Any]]:
    boto_client("s3", url).create_bucket(Bucket="import-target")
    ie = importexport_client(url)
    created = ie.create_job(JobType="Import", Manifest=MANIFEST, ValidateOnly=False)
    job_id = created["JobId"]
    assert created["JobType"] == "Import" and created["ArtifactList"][0]["URL"].startswith("https://")
    assert [job["JobId"] for job in ie.list_jobs()["Jobs"]] == [job_id]
    status = ie.get_status(JobId=job_id)
    assert (status["ProgressCode"], status["CurrentManifest"]) == ("Pending", MANIFEST)
    assert (
        ie.update_job(JobId=job_id, JobType="Import", Manifest=MANIFEST, ValidateOnly=True)["Success"] is True
    )
    assert ie.get_shipping_label(jobIds=[job_id])["ShippingLabelURL"].endswith(".pdf")
    assert ie.cancel_job(JobId=job_id)["Success"] is True
    assert ie.list_jobs()["Jobs"][0]["IsCanceled"] is True
    return [
        client_error(lambda: ie.cancel_job(JobId=job_id)),
        client_error(lambda: ie.get_status(JobId="NOJOB")),
        client_error(
            lambda: ie.create_job(
                JobType="Import", Manifest=MANIFEST.replace("import-target", "nope"), ValidateOnly=False
            )
        ),
        client_error(
            lambda: ie.create_job(JobType="Import", Manifest="manifestVersion 2.0", ValidateOnly=False)
        ),
    ]


async def test_job_lifecycle_and_errors(emulator: Any) -> None:
    canceled, invalid, no_bucket, malformed = await asyncio.to_thread(lifecycle, emulator.url)
    assert canceled["Error"] | {"Message": ""} == {
        "Type": "Sender",
        "Code": "CanceledJobIdException",
        "Message": "",
    }
    assert canceled["Error"]["Message"] == "The specified job ID has been canceled and is no longer valid."
    assert invalid["Error"]["Code"] == "InvalidJobIdException"
    assert no_bucket["Error"]["Code"] == "NoSuchBucketException"
    assert malformed["Error"]["Code"] == "MalformedManifestException"
    for response in (canceled, invalid, no_bucket, malformed):
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "text/xml"


async def test_default_boto3_client_is_accepted(emulator: Any) -> None:
    jobs = await asyncio.to_thread(lambda: boto_client("importexport", emulator.url).list_jobs())
    assert jobs["Jobs"] == []
