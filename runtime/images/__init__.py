"""OCI images for the node: a sha256 content store, pulls from OCI distribution registries,
archive import, layers unpacked once and shared, image records that survive restarts.

``ImageStore(root, insecure_registries=())`` is the API the CRI ImageService and the runtime's
drivers use: ``await pull(ref, auth)``, ``get(ref_or_id)``, ``list()``, ``await remove(ref_or_id)``,
``fs_info()``, ``await import_archive(path)``, ``await close()``. An ``Image`` gives the driver its
config and unpacked layer directories (``driver_info()``). Errors: ``InvalidReference``,
``ImageNotFound``, ``PullError``.
"""

from runtime.images.errors import ImageError, ImageNotFound, InvalidReference, PullError
from runtime.images.imagestore import Image, ImageStore
from runtime.images.reference import Reference
from runtime.images.reference import parse as parse_reference
from runtime.images.registry import RegistryAuth

__all__ = ["Image", "ImageError", "ImageNotFound", "ImageStore", "InvalidReference", "PullError",
           "Reference", "RegistryAuth", "parse_reference"]
