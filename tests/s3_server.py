"""A moto S3 server in a thread, for tests that need a real S3 endpoint (s3fs, subprocesses).

``S3Server.start()`` binds 127.0.0.1 on a free port, sets dummy credentials and points every
S3 client at it through ``AWS_ENDPOINT_URL`` (honoured by botocore >= 1.31, so by s3fs via
aiobotocore, and inherited by subprocesses). ``env`` holds the variables to hand to a child
process explicitly.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any

__all__ = ["S3Server", "DUMMY_AWS_ENV"]

DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}

# Anything in the environment that could send a client elsewhere or pick other credentials.
_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
          "AWS_ENDPOINT_URL_S3", "AWS_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")


class S3Server:
    def __init__(self, server: Any, endpoint: str) -> None:
        self._server = server
        self.endpoint = endpoint
        self.env = dict(DUMMY_AWS_ENV, AWS_ENDPOINT_URL=endpoint, NO_PROXY="127.0.0.1,localhost",
                        no_proxy="127.0.0.1,localhost")
        self._saved: dict[str, str | None] = {}

    @classmethod
    def start(cls) -> "S3Server":
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self = cls(server, f"http://{host}:{port}")
        self._apply_env()
        return self

    def _apply_env(self) -> None:
        for key in (*self.env, *_UNSET):
            self._saved[key] = os.environ.get(key)
        for key in _UNSET:
            os.environ.pop(key, None)
        os.environ.update(self.env)
        self._clear_client_caches()

    @staticmethod
    def _clear_client_caches() -> None:
        """An S3FileSystem made before the endpoint was set must not be reused."""
        try:
            import s3fs

            s3fs.S3FileSystem.clear_instance_cache()
        except ImportError:
            pass

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def make_bucket(self, prefix: str = "autotrack-test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        try:
            self._server.stop()
        finally:
            for key, value in self._saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            self._clear_client_caches()
