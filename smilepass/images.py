"""Screenshots: checked, re-encoded with Pillow (so EXIF, GPS and comments are gone), stored under
random names in the file storage (never under static/), with a small thumbnail."""
import hashlib
import io
import secrets
import warnings
from dataclasses import dataclass

from flask_babel import gettext
from PIL import Image, ImageOps, UnidentifiedImageError

from .storage import Storage, StorageUnavailable

ALLOWED_FORMATS = {"PNG": ("image/png", ".png"), "JPEG": ("image/jpeg", ".jpg"), "WEBP": ("image/webp", ".webp")}
# A screenshot of a 8K screen is 33 megapixels; anything far beyond is a decompression bomb.
MAX_PIXELS = 40_000_000
THUMB_SIZE = (360, 240)


class ImageRejected(Exception):
    pass


@dataclass
class StoredImage:
    stored_name: str
    thumb_name: str
    content_type: str
    size: int
    sha256: str
    width: int
    height: int


def store_image(stream, storage: Storage, max_bytes: int) -> StoredImage:
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageRejected(gettext("The image is larger than %(size)s MB.", size=max_bytes // (1024 * 1024)))
    if not data:
        raise ImageRejected(gettext("The image file is empty."))
    image = _open_checked(data)
    content_type, ext = ALLOWED_FORMATS[image.format]
    image = ImageOps.exif_transpose(image)
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    if image.format == "JPEG" or ext == ".jpg":
        image = image.convert("RGB") if image.mode not in ("RGB", "L") else image

    # Pillow carries comments, EXIF and ICC over from info when saving; start from pixels alone.
    image.info = {}
    encoded = io.BytesIO()
    save_args = {"PNG": {"optimize": True}, "JPEG": {"quality": 90}, "WEBP": {"quality": 90}}[_format_for(ext)]
    image.save(encoded, _format_for(ext), **save_args)
    thumb = image.copy()
    thumb.thumbnail(THUMB_SIZE)
    thumb_bytes = io.BytesIO()
    thumb.save(thumb_bytes, "WEBP", quality=80)

    stored_name = secrets.token_hex(16) + ext
    thumb_name = secrets.token_hex(16) + ".webp"
    storage.put_bytes(stored_name, encoded.getvalue())
    try:
        storage.put_bytes(thumb_name, thumb_bytes.getvalue())
    except BaseException:
        remove_stored(storage, stored_name)  # a screenshot without its thumbnail is no use
        raise
    payload = encoded.getvalue()
    return StoredImage(
        stored_name=stored_name,
        thumb_name=thumb_name,
        content_type=content_type,
        size=len(payload),
        sha256=hashlib.sha256(payload).hexdigest(),
        width=image.width,
        height=image.height,
    )


def _format_for(ext: str) -> str:
    return {".png": "PNG", ".jpg": "JPEG", ".webp": "WEBP"}[ext]


def _open_checked(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ALLOWED_FORMATS:
                raise ImageRejected(gettext("Only PNG, JPEG and WebP screenshots are accepted."))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageRejected(gettext("The image has too many pixels to be a screenshot."))
            image.load()
            return image
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(gettext("The image has too many pixels to be a screenshot.")) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ImageRejected(gettext("The file is not a readable PNG, JPEG or WebP image.")) from None


def remove_stored(storage: Storage, *names: str | None) -> None:
    """Remove stored screenshots; with the storage unreachable they stay (unreferenced files are
    removed by `flask storage orphans`)."""
    for name in names:
        if name:
            try:
                storage.delete(name)
            except StorageUnavailable:
                pass
