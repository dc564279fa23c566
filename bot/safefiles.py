"""Writing an output file (a report, a rejects file) without following a planted link.

Opening ``path`` for writing follows a symbolic link at that name and truncates a hard-linked
file in place: someone who can write the folder (a shared import folder, var/reports) could
make an import or a report overwrite any file its user may write.  :func:`replacing` writes a
new file instead, under a temporary name created exclusively in the same folder (``mkstemp``:
``O_CREAT | O_EXCL``, and ``O_NOFOLLOW`` where the system has it), and renames it over the
name at the end.  A rename replaces the directory entry, never what a link points at, and
readers never see half a file.  A name that already is a symbolic link, or something other
than a regular file, is refused with a clear error before anything is written.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


class UnsafeOutputPath(OSError):
    """The output name is a symbolic link or not a regular file: nothing was written."""


def check_output_path(path: Path) -> None:
    """Refuse *path* if it exists as anything but a regular file (a link is not followed)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise UnsafeOutputPath(f"{path} is a symbolic link: not writing through it "
                               "(remove the link or choose another file name)")
    if not stat.S_ISREG(mode):
        raise UnsafeOutputPath(f"{path} exists and is not a regular file")


class NewFile:
    """A new, empty binary file (:attr:`stream`) that takes the name *path* on
    :meth:`commit`, or is thrown away on :meth:`discard`.  Created with mode 0600: what an
    import or a report writes is about customers."""

    def __init__(self, path: Path) -> None:
        check_output_path(path)
        self.path = path
        fd, self._temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                          suffix=".part")
        self.stream: BinaryIO = os.fdopen(fd, "wb")

    def commit(self) -> None:
        try:
            self.stream.close()
            check_output_path(self.path)  # planted while we wrote: say so (renaming is safe)
            os.replace(self._temp, self.path)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        self.stream.close()
        with contextlib.suppress(OSError):
            os.unlink(self._temp)


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """A :class:`NewFile` for a ``with`` block: committed when the block ends, discarded
    when it raises."""
    new = NewFile(path)
    try:
        yield new.stream
    except BaseException:
        new.discard()
        raise
    new.commit()


def remove_regular_file(path: Path) -> None:
    """Remove *path* if it is a regular file; a link, a device or a folder is left alone."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISREG(os.lstat(path).st_mode):
            path.unlink()
