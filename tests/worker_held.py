"""`python -m tests.worker_held <redis key> [worker arguments]`: workers.worker whose work horse, right after
storing the first output of a repair, says so (its pid under the Redis key) and then holds still until it
is killed. A test can so SIGKILL a worker mid-repair at a known point, deterministically: the input
fetched, part of the outputs in the storage, the row still "processing"."""
import os
import sys
import time

from redis import Redis

from smilepass.storage.local import LocalStorage
from smilepass.storage.s3 import S3Storage
from workers.worker import main


def hold_after_first_output(signal_key: str) -> None:
    for backend in (S3Storage, LocalStorage):
        real = backend.put_file

        def put_file(self, key, path, move=False, real=real):
            size = real(self, key, path, move)
            Redis.from_url(os.environ["REDIS_URL"]).set(signal_key, os.getpid())
            while size >= 0:  # until the test kills this horse
                time.sleep(60)

        backend.put_file = put_file


if __name__ == "__main__":
    hold_after_first_output(sys.argv[1])
    sys.exit(main(sys.argv[2:]))
