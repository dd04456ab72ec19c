"""The servable manager: which versions of which models are loaded, version lookup, and reloads.

Loads happen outside the request lock, so serving never waits on a load. A new version becomes AVAILABLE before
the version it replaces starts UNLOADING, and an unload waits until requests already holding the old version
finish, so a version switch drops no request. A version that fails to load is recorded (state END with its
error) and is retried when the files in its directory tree change, and a few times with the same files.
"""

import contextlib
import logging
import os
import threading
import time
from typing import Callable, Dict, Iterator, List, Optional

import grpc
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2, model_pb2

from serving import model_config
from serving.errors import ServingError, failed_precondition, invalid_argument, not_found
from serving.servable import Servable

State = get_model_status_pb2.ModelVersionStatus.State
log = logging.getLogger(__name__)

# TF Serving's --max_num_load_retries / --load_retry_interval_micros defaults: a version that failed to load
# with unchanged files is tried again this often, this many times (a copy still in progress may complete).
DEFAULT_MAX_NUM_LOAD_RETRIES = 5
DEFAULT_LOAD_RETRY_INTERVAL_SECONDS = 60.0
# How long an unload waits for in-flight requests on the old version before it unloads anyway.
UNLOAD_DRAIN_SECONDS = 60.0


# Bounds of the fingerprint walk, so that a version holding huge trees cannot stall the poller.
FINGERPRINT_MAX_ENTRIES = 10_000
FINGERPRINT_MAX_DEPTH = 8


def directory_fingerprint(path: str):
    """What changes when a version directory is rewritten or a copy into it completes: (relative path, size,
    mtime) of every entry in its tree.

    Local directories are walked without following symbolic links (a link is recorded as itself), at most
    FINGERPRINT_MAX_DEPTH levels and FINGERPRINT_MAX_ENTRIES entries, so symlink loops or links to large
    trees cannot hang or spin the poller; `variables/variables.data-*` growing as `cp -r` or rsync finishes
    changes it. Other file systems (gs://, ...) are looked at one level deep through tf.io.gfile.
    """
    if "://" in path:
        return _gfile_fingerprint(path)
    entries = []
    pending = [("", 0)]
    while pending and len(entries) < FINGERPRINT_MAX_ENTRIES:
        relative, depth = pending.pop()
        try:
            with os.scandir(os.path.join(path, relative)) as children:
                for child in children:
                    name = os.path.join(relative, child.name)
                    try:
                        stat = child.stat(follow_symlinks=False)
                    except OSError:
                        entries.append((name, None, None))
                        continue
                    entries.append((name, stat.st_size, stat.st_mtime_ns))
                    if depth + 1 < FINGERPRINT_MAX_DEPTH and child.is_dir(follow_symlinks=False):
                        pending.append((name, depth + 1))
        except OSError:
            if not relative:
                return None
            entries.append((relative, "unreadable", None))
    return tuple(sorted(entries[:FINGERPRINT_MAX_ENTRIES]))


def _gfile_fingerprint(path: str):
    entries = []
    try:
        children = tf.io.gfile.listdir(path)
    except tf.errors.OpError:
        return None
    for name in children:
        try:
            stat = tf.io.gfile.stat(os.path.join(path, name.rstrip("/")))
        except tf.errors.OpError:
            entries.append((name, None, None))
            continue
        entries.append((name, stat.length, stat.mtime_nsec))
    return tuple(sorted(entries))


class VersionRecord:
    """The state of one version of one model."""

    def __init__(self, version: int):
        self.version = version
        self.state = State.START
        self.error: Optional[ServingError] = None
        self.servable: Optional[Servable] = None
        self.fingerprint = None
        self.in_flight = 0
        self.attempts = 0  # loads tried with the same files
        self.failed_at = 0.0  # time.monotonic() of the last failed load

    def status_proto(self) -> get_model_status_pb2.ModelVersionStatus:
        status = get_model_status_pb2.ModelVersionStatus(version=self.version, state=self.state)
        status.status.SetInParent()  # always present, OK when there is no error (REST prints it)
        if self.error is not None:
            status.status.error_code = self.error.code.value[0]
            status.status.error_message = self.error.message
        return status


class ModelRecord:
    def __init__(self, config: model_config.ModelConfig):
        self.config = config
        self.versions: Dict[int, VersionRecord] = {}
        self.labels: Dict[str, int] = {}
        self.listing_failed = False  # the last poll could not list the base path
        self.chosen: Optional[List[int]] = None  # versions the policy serves, as of the last sync
        self.on_disk = set()  # version numbers seen on disk by the last sync


class ServableManager:
    """Holds the models of a ModelServerConfig and answers "which servable serves this ModelSpec?"."""

    def __init__(self, load: Callable[[str, int, str], Servable], unload: Callable[[Servable], None],
                 max_num_load_retries: int = DEFAULT_MAX_NUM_LOAD_RETRIES,
                 load_retry_interval_seconds: float = DEFAULT_LOAD_RETRY_INTERVAL_SECONDS):
        self.max_num_load_retries = max_num_load_retries
        self.load_retry_interval_seconds = load_retry_interval_seconds
        self._load = load
        self._unload = unload
        self._lock = threading.Condition()  # guards the records and in-flight counts
        self._sync_lock = threading.RLock()  # one config change or poll at a time
        self._models: Dict[str, ModelRecord] = {}
        self._failed_attempts: Dict[str, Dict[int, VersionRecord]] = {}  # base path -> versions a config change
        # that was refused failed to load

    # ---- requests ---------------------------------------------------------------------------------------------
    def _resolve(self, spec: model_pb2.ModelSpec) -> VersionRecord:
        if not spec.name:
            raise invalid_argument("ModelSpec has no name specified.")
        model = self._models.get(spec.name)
        choice = spec.WhichOneof("version_choice")
        if choice == "version_label":
            if model is None or spec.version_label not in model.labels:
                raise invalid_argument(f"Unrecognized servable version label: {spec.version_label}")
            version = model.labels[spec.version_label]
        elif choice == "version":
            version = spec.version.value
        else:
            version = None
        if version is None:
            available = [r for r in model.versions.values() if r.state == State.AVAILABLE] if model else []
            if not available:
                raise not_found(f"Servable not found for request: Latest({spec.name})")
            return max(available, key=lambda r: r.version)
        record = model.versions.get(version) if model else None
        if record is None or record.state != State.AVAILABLE:
            raise not_found(f"Servable not found for request: Specific({spec.name}, {version})")
        return record

    @contextlib.contextmanager
    def acquire(self, spec: model_pb2.ModelSpec) -> Iterator[Servable]:
        """Hold the servable `spec` resolves to for the duration of one request."""
        with self._lock:
            record = self._resolve(spec)
            record.in_flight += 1
            servable = record.servable
        try:
            yield servable
        finally:
            with self._lock:
                record.in_flight -= 1
                if record.in_flight == 0:
                    self._lock.notify_all()

    def version_statuses(self, spec: model_pb2.ModelSpec) -> List[get_model_status_pb2.ModelVersionStatus]:
        """GetModelStatus: every known version of the model (or the one asked for), newest first."""
        if not spec.name:
            raise invalid_argument("ModelSpec has no name specified.")
        with self._lock:
            model = self._models.get(spec.name)
            records = sorted(model.versions.values(), key=lambda r: -r.version) if model else []
            choice = spec.WhichOneof("version_choice")
            if choice == "version_label":
                if model is None or spec.version_label not in model.labels:
                    raise invalid_argument(f"Unrecognized servable version label: {spec.version_label}")
                wanted = model.labels[spec.version_label]
            else:
                wanted = spec.version.value if choice == "version" else None
            if wanted is not None:
                records = [r for r in records if r.version == wanted]
                if not records:
                    raise not_found(f"Could not find version {wanted} of model {spec.name}")
            if not records:
                raise not_found(f"Could not find any versions of model {spec.name}")
            return [r.status_proto() for r in records]

    def model_names(self) -> List[str]:
        with self._lock:
            return sorted(self._models)

    def has_model(self, name: str) -> bool:
        return name in self._models

    def all_models_available(self) -> bool:
        """Every configured model has at least one AVAILABLE version (and there is at least one model)."""
        with self._lock:
            return bool(self._models) and all(
                any(r.state == State.AVAILABLE for r in m.versions.values()) for m in self._models.values())

    # ---- config and polling -----------------------------------------------------------------------------------
    def apply_config(self, config: model_config.ModelServerConfig) -> None:
        """Realize `config` whole or not at all: add and load new models, update changed ones, unload the models
        it leaves out.

        Everything the new config needs is checked and loaded beside what serves: only when every model in it
        has a version available (and its labels name available versions) does it replace the old config; then
        what the new config no longer wants is unloaded. On any failure the old config keeps serving unchanged,
        the versions loaded for the attempt are released, and the error is raised.
        """
        model_config.validate(config)
        for model in config.model_config_list.config:
            if not tf.io.gfile.isdir(model.base_path):
                raise not_found(f"Could not find base path {model.base_path} for servable {model.name}")
        with self._sync_lock:
            staged: Dict[str, ModelRecord] = {}
            try:
                for model in config.model_config_list.config:
                    record = self._staged_record(model)
                    staged[model.name] = record
                    chosen = self._load_wanted(record)
                    self._check_labels(record, chosen, dict(model.version_labels))
            except BaseException:
                for name, record in staged.items():
                    self._release_staged(record, self._models.get(name))
                raise
            with self._lock:
                previous, self._models = self._models, staged
            for name, record in previous.items():  # versions of removed or re-pointed models
                kept = staged.get(name)
                for entry in list(record.versions.values()):
                    if kept is None or kept.versions.get(entry.version) is not entry:
                        self._unload_version(record, entry)
            for record in staged.values():
                self._unload_unwanted(record, record.chosen)

    def _staged_record(self, model: model_config.ModelConfig) -> "ModelRecord":
        """A record for `model` not yet visible to requests: it shares the loaded versions of the current
        record of that name when the base path is the same (a policy or label change reloads nothing)."""
        record = ModelRecord(model)
        current = self._models.get(model.name)
        if current is not None and current.config.base_path == model.base_path:
            record.versions = dict(current.versions)
            record.labels = dict(current.labels)
        else:  # versions that failed in an earlier attempt are retried only as their retry rules allow
            record.versions = dict(self._failed_attempts.get(model.base_path, {}))
        return record

    def _release_staged(self, record: "ModelRecord", current: Optional["ModelRecord"]) -> None:
        """Unload what a failed config change loaded into `record` (versions `current` does not hold), and
        remember the versions that failed to load so that the next attempt does not load them again at once."""
        failed = {v: e for v, e in record.versions.items() if e.state == State.END and e.error is not None}
        if failed:
            self._failed_attempts[record.config.base_path] = failed
        for entry in list(record.versions.values()):
            if current is None or current.versions.get(entry.version) is not entry:
                self._unload_version(record, entry)

    def _check_labels(self, record: "ModelRecord", chosen: List[int], labels: Dict[str, int]) -> None:
        with self._lock:
            available = {v for v in chosen if record.versions[v].state == State.AVAILABLE}
            if not available:
                errors = [r.error for r in record.versions.values() if r.error is not None]
                if errors:
                    raise errors[-1]
                raise not_found(f"No versions of servable {record.config.name} found under base path "
                                f"{record.config.base_path}")
            for version in labels.values():
                if version not in available:
                    raise failed_precondition(
                        f"Request to assign label to version {version} of model {record.config.name}, which is "
                        "not currently available for inference")
            record.labels = labels

    def poll(self) -> None:
        """One pass of the file-system source: load new versions, unload versions the policy drops."""
        with self._sync_lock:
            with self._lock:
                records = list(self._models.values())
            for record in records:
                try:
                    self._sync_model(record)
                except Exception:  # one model's trouble must not stop the others from being polled
                    log.exception("polling model %s failed", record.config.name)

    def _sync_model(self, record: ModelRecord) -> None:
        chosen = self._load_wanted(record)
        if chosen is not None:
            self._unload_unwanted(record, chosen)

    def _load_wanted(self, record: ModelRecord) -> Optional[List[int]]:
        """Load the versions the policy wants (newest first) that are not loaded yet; returns the versions
        chosen to serve, or None when the base path could not be listed (then nothing changes)."""
        try:
            on_disk = model_config.list_versions(record.config.base_path)
        except model_config.BasePathListingError as e:
            # As TF Serving: a listing error is not "no versions"; keep serving what is loaded and retry.
            if not record.listing_failed:
                log.warning("%s; keeping the loaded versions of %s", e, record.config.name)
            record.listing_failed = True
            record.chosen = [v for v, r in record.versions.items() if r.state == State.AVAILABLE]
            return None
        if record.listing_failed:
            log.info("Base path %s of %s can be listed again", record.config.base_path, record.config.name)
            record.listing_failed = False
        candidates, wanted_count = model_config.candidate_versions(record.config, list(on_disk))
        chosen = []
        for version in candidates:
            if len(chosen) >= wanted_count:
                break
            existing = record.versions.get(version)
            if existing is not None and existing.state == State.AVAILABLE:
                chosen.append(version)
            elif self._load_version(record, version, on_disk[version]):
                chosen.append(version)
        record.chosen = chosen
        record.on_disk = set(on_disk)
        return chosen

    def _unload_unwanted(self, record: ModelRecord, chosen: Optional[List[int]]) -> None:
        if chosen is None:
            return
        for version in list(record.versions.values()):
            if version.state == State.AVAILABLE and version.version not in chosen:
                self._unload_version(record, version)
            elif version.state == State.END and version.version not in record.on_disk:
                with self._lock:
                    record.versions.pop(version.version, None)

    def _load_version(self, record: ModelRecord, version: int, path: str) -> bool:
        """Load one version unless it already failed with the same files and its retries are spent or not
        due yet (as TF Serving's --max_num_load_retries / --load_retry_interval_micros); True when it is
        AVAILABLE. Changed files (anywhere in the version's tree) always earn a fresh try."""
        existing = record.versions.get(version)
        fingerprint = directory_fingerprint(path)
        attempts = 0
        if existing is not None and existing.error is not None and existing.fingerprint == fingerprint:
            attempts = existing.attempts
            if attempts > self.max_num_load_retries or (
                    time.monotonic() - existing.failed_at < self.load_retry_interval_seconds):
                return False
            log.info("Retrying to load servable %s version %d (retry %d of %d)", record.config.name, version,
                     attempts, self.max_num_load_retries)
        entry = VersionRecord(version)
        entry.state = State.LOADING
        entry.fingerprint = fingerprint
        entry.attempts = attempts + 1
        with self._lock:
            record.versions[version] = entry
        try:
            servable = self._load(record.config.name, version, path)
        except Exception as e:
            error = e if isinstance(e, ServingError) else ServingError(grpc.StatusCode.UNKNOWN,
                                                                      f"{type(e).__name__}: {e}")
            log.error("Loading servable %s version %d from %s failed: %s", record.config.name, version, path,
                      error.message)
            with self._lock:
                entry.error = error
                entry.state = State.END
                entry.failed_at = time.monotonic()
            return False
        with self._lock:
            entry.servable = servable
            entry.state = State.AVAILABLE
        log.info("Successfully loaded servable version {name: %s version: %d}", record.config.name, version)
        return True

    def _unload_version(self, record: ModelRecord, entry: VersionRecord,
                        timeout: float = UNLOAD_DRAIN_SECONDS) -> None:
        """Stop routing to `entry`, wait (up to `timeout` s) for its in-flight requests, then release it."""
        with self._lock:
            if entry.state != State.AVAILABLE:
                return
            entry.state = State.UNLOADING
            self._lock.wait_for(lambda: entry.in_flight == 0, timeout=timeout)
            servable, entry.servable = entry.servable, None
        try:
            self._unload(servable)
        finally:
            with self._lock:
                entry.state = State.END
        log.info("Unloaded servable version {name: %s version: %d}", record.config.name, entry.version)

    def unload_all(self, timeout: float = UNLOAD_DRAIN_SECONDS) -> None:
        """Unload every version, waiting at most `timeout` seconds in all for requests still holding them."""
        end = time.monotonic() + timeout
        with self._sync_lock:
            with self._lock:
                records = list(self._models.values())
            for record in records:
                for entry in list(record.versions.values()):
                    self._unload_version(record, entry, timeout=max(end - time.monotonic(), 0))
