"""Requests as large as AWS accepts pass through sigwatch (enforce mode).

A JSON-protocol request has no x-amz-content-sha256: its body hash is part of the signature, so sigwatch
buffers the body to check it, up to limits.max_buffered_body_bytes. DynamoDB accepts BatchWriteItem
requests up to 16 MB (25 items of up to 400 KB each; binary attributes travel base64-encoded, a third
larger), so the default must let such a request through.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from e2e_proxy_support import RunningSigwatch, boto

pytestmark = pytest.mark.e2e


def test_a_full_dynamodb_batch_write_passes(moto_proxy: RunningSigwatch, logs: Any) -> None:
    dynamodb = boto("dynamodb", moto_proxy.url)
    dynamodb.create_table(
        TableName="e2e-large-batch",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sizes: list[int] = []
    dynamodb.meta.events.register(
        "before-send.dynamodb.BatchWriteItem", lambda request, **_: sizes.append(len(request.body))
    )
    items = [
        {"PutRequest": {"Item": {"id": {"S": str(i)}, "blob": {"B": os.urandom(390 * 1024)}}}}
        for i in range(25)
    ]
    answer = dynamodb.batch_write_item(RequestItems={"e2e-large-batch": items})
    assert answer["UnprocessedItems"] == {}
    assert 10 * 1024 * 1024 < sizes[0] < 16 * 1000 * 1000
    # A Scan reads at most 1 MB per page: count over every page.
    pages = dynamodb.get_paginator("scan").paginate(TableName="e2e-large-batch", Select="COUNT")
    assert sum(page["Count"] for page in pages) == 25
