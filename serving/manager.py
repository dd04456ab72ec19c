"""The servable manager: which versions of which models are loaded, version lookup, and reloads.

Loads happen outside the request lock, so serving never waits on a load. A new version becomes AVAILABLE before
the version it replaces starts UNLOADING, and an unload waits until requests already holding the old version
finish, so a version switch drops no request. A version that fails to load is recorded (state END with its
error) and is retried only when the files in its directory change.
"""

import contextlib
import logging
import os
import threading
from typing import Callable, Dict, Iterator, List, Optional

import grpc
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2, model_pb2

from serving import model_config
from serving.errors import ServingError, failed_precondition, invalid_argument, not_found
from serving.servable import Servable

State = get_model_status_pb2.ModelVersionStatus.State
log = logging.getLogger(__name__)

# How long an unload waits for in-flight requests on the old version before it unloads anyway.
UNLOAD_DRAIN_SECONDS = 60.0


def directory_fingerprint(path: str):
    """What changes when a version directory is rewritten: (name, size, mtime) of its direct children.

    One level only, so that a version holding symlink loops or links to large trees cannot hang or spin the
    poller (rewriting `variables/` changes that directory's mtime, so a retry is still noticed).
    """
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


class ServableManager:
    """Holds the models of a ModelServerConfig and answers "which servable serves this ModelSpec?"."""

    def __init__(self, load: Callable[[str, int, str], Servable], unload: Callable[[Servable], None]):
        self._load = load
        self._unload = unload
        self._lock = threading.Condition()  # guards the records and in-flight counts
        self._sync_lock = threading.RLock()  # one config change or poll at a time
        self._models: Dict[str, ModelRecord] = {}

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
        """Realize `config`: add and load new models, update changed ones, unload the models it leaves out.

        Returns once every model in it has a version available (else raises, leaving the config applied).
        """
        model_config.validate(config)
        for model in config.model_config_list.config:
            if not tf.io.gfile.isdir(model.base_path):
                raise not_found(f"Could not find base path {model.base_path} for servable {model.name}")
        with self._sync_lock:
            wanted = {m.name: m for m in config.model_config_list.config}
            with self._lock:
                removed = [self._models.pop(name) for name in list(self._models) if name not in wanted]
                for name, model in wanted.items():
                    if name in self._models:
                        self._models[name].config = model
                    else:
                        self._models[name] = ModelRecord(model)
            for record in removed:
                for version in list(record.versions.values()):
                    self._unload_version(record, version)
            for name in wanted:
                self._sync_model(self._models[name])
            for name, model in wanted.items():
                self._apply_labels(self._models[name], dict(model.version_labels))

    def _apply_labels(self, record: ModelRecord, labels: Dict[str, int]) -> None:
        with self._lock:
            available = {v for v, r in record.versions.items() if r.state == State.AVAILABLE}
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
        try:
            on_disk = model_config.list_versions(record.config.base_path)
        except model_config.BasePathListingError as e:
            # As TF Serving: a listing error is not "no versions"; keep serving what is loaded and retry.
            if not record.listing_failed:
                log.warning("%s; keeping the loaded versions of %s", e, record.config.name)
            record.listing_failed = True
            return
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
        for version in list(record.versions.values()):
            if version.state == State.AVAILABLE and version.version not in chosen:
                self._unload_version(record, version)
            elif version.state == State.END and version.version not in on_disk:
                with self._lock:
                    record.versions.pop(version.version, None)

    def _load_version(self, record: ModelRecord, version: int, path: str) -> bool:
        """Load one version unless it already failed with the same files; True when it is AVAILABLE."""
        existing = record.versions.get(version)
        fingerprint = directory_fingerprint(path)
        if existing is not None and existing.error is not None and existing.fingerprint == fingerprint:
            return False
        entry = VersionRecord(version)
        entry.state = State.LOADING
        entry.fingerprint = fingerprint
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
            return False
        with self._lock:
            entry.servable = servable
            entry.state = State.AVAILABLE
        log.info("Successfully loaded servable version {name: %s version: %d}", record.config.name, version)
        return True

    def _unload_version(self, record: ModelRecord, entry: VersionRecord) -> None:
        """Stop routing to `entry`, wait for its in-flight requests, then release it."""
        with self._lock:
            if entry.state != State.AVAILABLE:
                return
            entry.state = State.UNLOADING
            self._lock.wait_for(lambda: entry.in_flight == 0, timeout=UNLOAD_DRAIN_SECONDS)
            servable, entry.servable = entry.servable, None
        try:
            self._unload(servable)
        finally:
            with self._lock:
                entry.state = State.END
        log.info("Unloaded servable version {name: %s version: %d}", record.config.name, entry.version)

    def unload_all(self) -> None:
        with self._sync_lock:
            with self._lock:
                records = list(self._models.values())
            for record in records:
                for entry in list(record.versions.values()):
                    self._unload_version(record, entry)
