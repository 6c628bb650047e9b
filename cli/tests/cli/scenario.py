"""What the boto3 scenarios share: waiting for a condition, and the exception a call fails with."""

import time

from botocore.exceptions import ClientError


def error_code(call, **kwargs):
    """The exception name a call that must fail fails with."""
    try:
        call(**kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError(f"{call.__name__}({kwargs}) succeeded")


def poll(what, check, timeout=90, every=0.2):
    """`check()`'s first value other than None, asked every `every` seconds."""
    start = time.time()
    while True:
        value = check()
        if value is not None:
            return value
        if time.time() - start > timeout:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(every)
