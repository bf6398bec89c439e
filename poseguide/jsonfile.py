"""Reading the JSON files poseguide writes (dataset manifest, model config, evaluation report).

Each carries a "format" name and a "version". Files from elsewhere, from another
poseguide version, or cut short on disk must stop the command with one line that names
the file, in the error class of the module that asked.
"""

from __future__ import annotations

import json
from pathlib import Path


def read_versioned_json(
    path: Path, format_name: str, version: int, what: str, error: type[Exception], label: str | None = None
) -> dict:
    """The parsed file, after checking it parses to an object with this format and version.

    `what` names the kind of file in messages ("model config"); `label` replaces the path
    at the start of each message (e.g. "--compare report.json"). The caller checks that the
    file exists first, since what to do about a missing file differs for each.
    """
    label = label or str(path)
    try:
        data = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise error(f"{label}: not valid JSON ({err})") from None
    except RecursionError:  # the decoder recurses once per level of nesting
        raise error(f"{label}: not valid JSON (nested too deeply)") from None
    except ValueError:  # an integer of more digits than Python converts
        raise error(f"{label}: not valid JSON (a number too long)") from None
    except OSError as err:
        raise error(f"{label}: unreadable ({err.strerror or err.__class__.__name__})") from None
    if not isinstance(data, dict) or data.get("format") != format_name:
        raise error(f"{label}: not a poseguide {what} (format should be {format_name!r})")
    if data.get("version") != version:
        raise error(f"{label}: {what} version {data.get('version')!r}; this poseguide reads version {version}")
    return data
