"""Benchmark the runner's input upload against one-file-at-a-time, with storage latency.

Run by hand: ``python bench/upload.py [--files 1000] [--kb 100] [--delay-ms 20]``. It starts
Azurite and, in front of it, a small TCP proxy that holds every request for --delay-ms
(as a storage account in a distant region would: on loopback alone Azurite's single
thread is the limit). Then, in one run, it uploads the same files one at a time (as the
tutorial does) and with the runner's parallel, MD5-skipping upload, and prints both and
their ratio (target >= 5x); a second runner upload must send 0 bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import time
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from contract import local as local_keys
from local_stack import servers
from runner import staging
from runner.inputs import check_inputs, content_md5s


class DelayProxy:
    """Forwards TCP to a target, holding each new request (client bytes after a response)."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port = target_port
        self.delay = delay
        self.port = servers.free_port()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self._started.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", self.port)
        )
        self._started.set()
        self._loop.run_until_complete(server.serve_forever())

    async def _connection(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        answered = True  # the next client bytes start a new request

        async def upstream() -> None:
            nonlocal answered
            while data := await client_r.read(65536):
                if answered:
                    await asyncio.sleep(self.delay)
                    answered = False
                server_w.write(data)
                await server_w.drain()
            server_w.close()

        async def downstream() -> None:
            nonlocal answered
            while data := await server_r.read(65536):
                answered = True
                client_w.write(data)
                await client_w.drain()
            client_w.close()

        await asyncio.gather(upstream(), downstream(), return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--kb", type=int, default=100)
    parser.add_argument("--delay-ms", type=float, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        folder = root / "inputs"
        folder.mkdir()
        for i in range(args.files):
            (folder / f"f{i:05d}.txt").write_bytes(os.urandom(args.kb * 512).hex().encode())
        inputs = check_inputs([str(p) for p in sorted(folder.iterdir())])
        azurite = servers.start_azurite(root / "azurite", root / "azurite.log")
        try:
            proxy = DelayProxy(azurite.port, args.delay_ms / 1000)
            blobs = BlobServiceClient(
                f"http://127.0.0.1:{proxy.port}/{local_keys.STORAGE_ACCOUNT}",
                credential={
                    "account_name": local_keys.STORAGE_ACCOUNT,
                    "account_key": local_keys.STORAGE_KEY,
                },
            )
            container = blobs.create_container("input")

            started = time.perf_counter()
            for item in inputs:
                with open(item.path, "rb") as data:
                    container.upload_blob(f"serial/{item.name}", data, overwrite=True)
            serial = time.perf_counter() - started

            started = time.perf_counter()  # the MD5s too: submit reads them to skip uploads
            first = staging.upload_inputs(container, "parallel", inputs, content_md5s(inputs))
            parallel = time.perf_counter() - started

            started = time.perf_counter()
            second = staging.upload_inputs(container, "parallel", inputs, content_md5s(inputs))
            again = time.perf_counter() - started

            size = sum(item.size for item in inputs) / 2**20
            print(
                f"{args.files} files of {args.kb} KB ({size:.0f} MiB), {args.delay_ms:.0f} ms "
                "added to every storage request:"
            )
            print(f"  one at a time: {serial:.1f} s")
            print(
                f"  runner upload: {parallel:.1f} s ({first.uploaded} files, "
                f"{staging.PARALLEL_UPLOADS} in parallel): {serial / parallel:.1f}x faster "
                "(target >= 5x)"
            )
            print(
                f"  runner upload again: {again:.1f} s, {second.bytes_sent} bytes sent "
                f"({second.skipped} unchanged)"
            )
        finally:
            servers.stop(azurite)


if __name__ == "__main__":
    main()
