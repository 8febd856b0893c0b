"""Files that come with a new request or a reply (a screenshot and an intraoral scan), and scans
uploaded on a case page.

Files are stored before the database rows that point to them; if anything fails before the rows
are committed, the files are removed again, so a refused or failed upload leaves nothing behind.
Scan jobs are enqueued only after the commit, so a worker never looks for a row that isn't there."""
import errno

from flask_babel import gettext

from .. import audit
from ..images import ImageRejected, remove_stored, store_image
from ..models import Attachment, Scan, ScanState
from ..search import index as search_index
from ..storage import StorageUnavailable, for_config
from . import rescans
from .queueing import enqueue_repair
from .storage import ScanRefused, remove_files, store_scan

# No space left, or the user's disk quota is used up: either way the file cannot be stored now.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class UploadRefused(Exception):
    """A file that cannot be taken, with the field to show the reason beside and the HTTP status
    the page answers with (422 for the file itself, 507 when the server's disk is full)."""

    def __init__(self, field: str, message: str, status: int = 422):
        super().__init__(message)
        self.field = field
        self.status = status


def _out_of_space(field: str) -> UploadRefused:
    return UploadRefused(field, gettext("The server is out of space, so the file could not be stored. What you "
                                        "typed is kept; try again later or tell support."), status=507)


def _storage_unreachable(field: str) -> UploadRefused:
    return UploadRefused(field, gettext("The file storage cannot be reached, so the file could not be stored. "
                                        "What you typed is kept; try again in a moment or tell support."),
                         status=503)


class StagedUploads:
    def __init__(self, config):
        self.config = config
        self.image = None
        self.image_name = ""
        self.scan = None
        self.scan_name = ""
        self.scans: list[Scan] = []
        self.storage = for_config(config)

    def __enter__(self):
        return self

    def add_image(self, upload) -> None:
        if not (upload and upload.filename):
            return
        try:
            self.image = store_image(upload.stream, self.storage, self.config["MAX_IMAGE_BYTES"])
        except ImageRejected as exc:
            raise UploadRefused("image", str(exc)) from None
        except StorageUnavailable:
            raise _storage_unreachable("image") from None
        except OSError as exc:
            if exc.errno in DISK_FULL:
                raise _out_of_space("image") from None
            raise
        self.image_name = upload.filename[:255]

    def add_scan(self, upload) -> None:
        if not (upload and upload.filename):
            return
        try:
            self.scan = store_scan(upload.stream, self.storage, self.config["MAX_SCAN_BYTES"])
        except ScanRefused as exc:
            raise UploadRefused("scan", str(exc)) from None
        except StorageUnavailable:
            raise _storage_unreachable("scan") from None
        except OSError as exc:
            if exc.errno in DISK_FULL:
                raise _out_of_space("scan") from None
            raise
        self.scan_name = upload.filename[:255]

    def attach(self, ticket, user, message=None) -> None:
        """Create the rows; call inside the transaction that creates the ticket or reply. A scan sent
        with a request about a case belongs to that case too, so it shows on the case page."""
        if self.image:
            attachment = Attachment.create(ticket=ticket, message=message, uploader=user,
                                           original_name=self.image_name, **vars(self.image))
            audit.record("attachment_upload", attachment, f"ticket #{ticket.id}", actor=user)
        self._create_scan(user, ticket=ticket, message=message, case=ticket.case_id)
        if self.scans and message is not None and not message.internal:
            # The clinician's new scan in the thread answers an open rescan request (rescans.py).
            rescans.fulfil(ticket, self.scans[-1], user)
        if self.image or self.scan:  # file names are searchable
            search_index.reindex_tickets([ticket.id])
            if self.scan and ticket.case_id:
                search_index.reindex_cases([ticket.case_id], with_tickets=False)

    def attach_to_case(self, case, user) -> None:
        """Create the scan row for an upload on the case page (it belongs to no ticket); call inside
        a transaction, like attach."""
        self._create_scan(user, case=case)
        if self.scan:
            search_index.reindex_cases([case.id], with_tickets=False)

    def _create_scan(self, user, **owners) -> None:
        if self.scan:
            scan = Scan.create(uploader=user, original_name=self.scan_name, state=ScanState.QUEUED.value,
                               **owners, **vars(self.scan))
            self.scans.append(scan)
            # Where it was sent, by id (never the file's name: it often carries the patient's).
            where = f"ticket #{scan.ticket_id}" if scan.ticket_id else f"case #{scan.case_id}"
            audit.record("scan_upload", scan, where, actor=user)

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            for scan in self.scans:
                enqueue_repair(scan, self.config)
            return False
        if self.image:
            remove_stored(self.storage, self.image.stored_name, self.image.thumb_name)
        if self.scan:
            remove_files(self.storage, [self.scan.stored_name])
        return False
