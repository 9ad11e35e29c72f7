"""How every process (worker, ``ccs up``, the client, the API) reaches Temporal: one connect,
with the product's data converter (payloads encrypted with the deployment's keyring)."""

from __future__ import annotations

from temporalio.client import Client

from models.converter import Keyring, data_converter, load_keyring
from models.errors import CcsError
from models.settings import Settings


async def connect(settings: Settings, keyring: Keyring | None = None) -> Client:
    keyring = keyring or load_keyring(settings)
    try:
        return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                    data_converter=data_converter(keyring))
    except RuntimeError as e:
        why = "connection refused" if "refused" in str(e).lower() else str(e).splitlines()[0][:160]
        raise CcsError(f"cannot reach Temporal at {settings.temporal_address} ({why}): "
                       "is `ccs up` running, or TEMPORAL_ADDRESS set?") from None
