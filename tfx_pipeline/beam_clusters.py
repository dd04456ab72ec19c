"""Apache Flink and Apache Spark for the pipeline's Beam components, through Beam's portable job API.

`portable_runner_args(runner, ...)` is a context manager that yields the Beam arguments for
`PipelineConfig.beam_pipeline_args`: `--runner=PortableRunner --job_endpoint=...` of a Beam job server it
starts in front of the cluster. The cluster is the one named (`flink_master="host:8081"` (Flink's REST
address), `spark_master="spark://host:7077"`), or by default a local one it starts and stops here: a Flink
standalone JobManager and `workers` TaskManagers, or a Spark standalone master and `workers` workers, each a
separate Java process on 127.0.0.1. Every process it starts runs in its own process group, logs to
`log_dir`, and is stopped on exit, also when the run fails.

The SDK workers run `LOOPBACK`: in this Python process, which the cluster's tasks call back over gRPC. That
needs the cluster to reach this machine; on a real cluster pass instead `--beam-arg=--environment_type=DOCKER
--beam-arg=--environment_config=IMAGE` (an SDK container image holding tfmodels: Beam's
`apache/beam_python3.10_sdk:2.59.0` plus `pip install .`) or `EXTERNAL` with a worker pool next to each
task manager / executor.

Java, the job servers' jars and the Flink/Spark distributions come from `tools/beam_runners.sh`, which this
module runs the first time they are needed (they are cached).
"""

import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Dict, Iterator, List, Optional

from tfmodels.distribute.local_cluster import free_ports, stop

RUNNERS = ("flink", "spark")
LOOPBACK_HOST = "127.0.0.1"


class _LoopbackServer:
    """A grpc.Server whose wildcard listening addresses ("[::]:PORT", "0.0.0.0:PORT") become 127.0.0.1."""

    def __init__(self, server):
        self._server = server

    def __getattr__(self, name):
        return getattr(self._server, name)

    def add_insecure_port(self, address: str) -> int:
        host, _, port = address.rpartition(":")
        if host in ("[::]", "0.0.0.0", ""):
            address = f"{LOOPBACK_HOST}:{port}"
        return self._server.add_insecure_port(address)


class _LoopbackGrpc:
    """The grpc module as Beam's worker pool sees it while `worker_pool_on_loopback` is active."""

    def __init__(self, grpc_module):
        self._grpc = grpc_module

    def __getattr__(self, name):
        return getattr(self._grpc, name)

    def server(self, *args, **kwargs):
        return _LoopbackServer(self._grpc.server(*args, **kwargs))


@contextlib.contextmanager
def worker_pool_on_loopback() -> Iterator[None]:
    """Beam's LOOPBACK worker pool (`worker_pool_main.BeamFnExternalWorkerPoolServicer.start`) listens on
    "[::]:0", every interface, unauthenticated; while a local cluster runs it listens on 127.0.0.1 (the local
    Flink/Spark processes call it there). A named cluster keeps Beam's default: it must reach this machine."""
    from apache_beam.runners.worker import worker_pool_main

    real = worker_pool_main.grpc
    worker_pool_main.grpc = _LoopbackGrpc(real)
    try:
        yield
    finally:
        worker_pool_main.grpc = real
FETCH_TOOL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "beam_runners.sh")
FLINK_VERSION = os.environ.get("TFMODELS_FLINK_VERSION", "1.19.3")
SPARK_VERSION = os.environ.get("TFMODELS_SPARK_VERSION", "3.5.3")
BEAM_JAVA_VERSION = os.environ.get("TFMODELS_BEAM_JAVA_VERSION", "2.62.0")
# Spark and Flink on Java 17 reach into JDK internals (both distributions' launch scripts pass these).
JAVA_OPENS = [f"--add-opens=java.base/{package}=ALL-UNNAMED" for package in (
    "java.lang", "java.lang.invoke", "java.lang.reflect", "java.io", "java.net", "java.nio", "java.text",
    "java.time", "java.util", "java.util.concurrent", "java.util.concurrent.atomic", "sun.nio.ch", "sun.nio.cs",
    "sun.security.action", "sun.util.calendar")] + ["--add-exports=java.base/sun.net.util=ALL-UNNAMED"]
STARTUP_TIMEOUT_S = 180
FLINK_LOG4J = """rootLogger.level = INFO
rootLogger.appenderRef.console.ref = console
appender.console.name = console
appender.console.type = CONSOLE
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss,SSS} %-5p %c{1} - %m%n
"""
# Every job the Spark runner submits ships the files of Beam's `filesToStage` to each executor, by default the
# job server's whole classpath: Beam's and Spark's jars, 386 files, 9 s of each job's 21 s (a trivial pipeline,
# the 2-core host). The executors of a local cluster have the job server's classpath instead (Beam's jars
# first, as in the job server: Spark's own put Guava 14 first, and each job's first tasks failed on Beam's
# calls to Guava 33 (`NoSuchMethodError: Preconditions.checkState`) and ran again), and a job ships only this
# small jar (SLF4J's API, on that classpath too). A named cluster keeps Beam's default.
SPARK_STAGED_JAR = "slf4j-api-*.jar"
# Likewise for Flink, whose job server stages its whole classpath with every job whatever the options say (Beam
# 2.62's FlinkJobInvoker: 162 jars, 152 MB through Flink's REST API; a trivial job 21 s, 4.5 s without): the
# job server of a local cluster puts tools/beam_staging's jar before Beam's, which stages the files this JVM
# property lists (none), and the cluster's JobManager and TaskManagers have Beam's jars on their classpath, after
# Flink's own (those of Flink and of logging left out: Flink has its own, and loaded them first before too).
FLINK_STAGING_JAR = os.path.join("staging", "tfmodels-beam-staging.jar")  # in <cache>/beam-<version>-flink
FILES_TO_STAGE_PROPERTY = "tfmodels.beam.filesToStage"
FLINK_PROVIDES = ("flink-", "slf4j-", "log4j-")
# The processes a run started, written to its log folder (what to look for if one is ever left over).
PROCESSES_FILE = "processes.json"


class ClusterError(RuntimeError):
    """A local cluster or job server did not start; the message names the log to read."""


def fetch(runner: str) -> str:
    """The cache directory holding `runner`'s distribution and job-server classpath (fetched on first use)."""
    if runner not in RUNNERS:
        raise ValueError(f"runner must be one of {RUNNERS}, got {runner!r}")
    if not os.path.exists(FETCH_TOOL):
        raise ClusterError(f"{FETCH_TOOL} is missing: --runner {runner} runs from a checkout of tfmodels")
    result = subprocess.run(["bash", FETCH_TOOL, runner], capture_output=True, text=True,
                            env=dict(os.environ, PY=os.environ.get("PY", sys.executable)))
    if result.returncode != 0:
        raise ClusterError(f"{FETCH_TOOL} {runner} failed:\n{result.stderr.strip()[-3000:]}")
    return result.stdout.strip().splitlines()[-1]


class _Processes:
    """Java processes started here, each in its own process group with its log in `log_dir`."""

    def __init__(self, log_dir: str):
        self.log_dir = log_dir
        self.started: Dict[str, subprocess.Popen] = {}  # name (its log is <name>.log) -> process

    def log(self, name: str) -> str:
        return os.path.join(self.log_dir, f"{name}.log")

    def start(self, name: str, command: List[str], env: Optional[dict] = None) -> subprocess.Popen:
        with open(self.log(name), "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                       env=dict(os.environ, **(env or {})))
        self.started[name] = process
        with open(os.path.join(self.log_dir, PROCESSES_FILE), "w") as f:
            json.dump({started: p.pid for started, p in self.started.items()}, f)
        return process

    def wait_until(self, ready, what: str, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Polls `ready()` until true; fails naming the log of a process that exited, or on timeout."""
        deadline = time.monotonic() + timeout
        while not ready():
            for name, process in self.started.items():
                if process.poll() is not None:
                    raise ClusterError(f"{what}: {name} exited with {process.returncode} before it was "
                                       f"ready; see {self.log(name)}")
            if time.monotonic() > deadline:
                raise ClusterError(f"{what} not ready after {timeout:.0f} s; logs in {self.log_dir}")
            time.sleep(0.5)

    def stop_all(self) -> None:
        stop(list(reversed(self.started.values())), grace=15.0)


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.load(response)
    except (OSError, ValueError):
        return None


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise ClusterError("java not found: --runner flink|spark needs Java 17 (apt-get install "
                           "openjdk-17-jre-headless)")
    return java


def _start_local_flink(processes: _Processes, home: str, workers: int, work_dir: str, beam_jars: List[str]) -> str:
    """JobManager + `workers` TaskManagers (one slot each), with `beam_jars` on their classpath after Flink's;
    returns the REST address host:port."""
    rpc_port, rest_port = free_ports(2)
    conf_dir = os.path.join(work_dir, "flink-conf")
    os.makedirs(conf_dir, exist_ok=True)
    settings = {
        "jobmanager.rpc.address": "127.0.0.1", "jobmanager.rpc.port": rpc_port, "jobmanager.bind-host": "127.0.0.1",
        "rest.address": "127.0.0.1", "rest.bind-address": "127.0.0.1", "rest.port": rest_port,
        "taskmanager.host": "127.0.0.1", "taskmanager.bind-host": "127.0.0.1",
        "taskmanager.numberOfTaskSlots": 1, "parallelism.default": workers,
        "jobmanager.memory.process.size": "1024m", "taskmanager.memory.process.size": "3072m",
        # Beam's gRPC data channel to the SDK workers uses direct memory: whole IMDB reviews need more than 0.
        "taskmanager.memory.task.off-heap.size": "512m", "taskmanager.memory.framework.off-heap.size": "256m",
        # Beam runs the pipeline as a Flink batch job, whose every blocking result partition takes
        # `sort-shuffle.min-buffers` (default 512) network buffers: Transform has dozens of them per slot.
        "taskmanager.memory.network.min": "256m", "taskmanager.memory.network.max": "256m",
        "taskmanager.network.sort-shuffle.min-buffers": 64,
        "taskmanager.cpu.cores": 1, "io.tmp.dirs": work_dir, "web.tmpdir": work_dir, "blob.storage.directory": work_dir,
    }
    with open(os.path.join(conf_dir, "flink-conf.yaml"), "w") as f:
        f.writelines(f"{key}: {value}\n" for key, value in settings.items())
    log_config = os.path.join(conf_dir, "log4j.properties")
    with open(log_config, "w") as f:  # Flink's processes log at INFO to their stdout (the log files here)
        f.write(FLINK_LOG4J)
    classpath = ":".join([os.path.join(home, "lib", "*"), *beam_jars])
    java = [_java(), *JAVA_OPENS, f"-Dlog4j.configurationFile=file:{log_config}", "-cp", classpath]
    processes.start("flink-jobmanager", [*java, "-Xmx768m",
                                         "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint",
                                         "--configDir", conf_dir])
    jvm_args, memory_settings = _task_manager_memory(home, conf_dir)
    for index in range(workers):
        processes.start(f"flink-taskmanager{index}", [
            *java, *jvm_args, "org.apache.flink.runtime.taskexecutor.TaskManagerRunner", "--configDir", conf_dir,
            *memory_settings])

    def ready():
        overview = _json(f"http://127.0.0.1:{rest_port}/overview")
        return bool(overview) and overview.get("taskmanagers", 0) >= workers

    processes.wait_until(ready, f"local Flink cluster (JobManager + {workers} TaskManagers)")
    return f"127.0.0.1:{rest_port}"


def _task_manager_memory(home: str, conf_dir: str):
    """The TaskManager's JVM flags and memory settings, split from `taskmanager.memory.process.size` by Flink's
    own calculator (what Flink's taskmanager.sh does): the TaskManager refuses to start without them."""
    classpath = os.path.join(home, "bin", "bash-java-utils.jar") + ":" + os.path.join(home, "lib", "*")
    result = subprocess.run([_java(), "-cp", classpath, "org.apache.flink.runtime.util.bash.BashJavaUtils",
                             "GET_TM_RESOURCE_PARAMS", "--configDir", conf_dir], capture_output=True, text=True)
    marker = "BASH_JAVA_UTILS_EXEC_RESULT:"
    lines = [line[len(marker):] for line in result.stdout.splitlines() if line.startswith(marker)]
    if result.returncode != 0 or len(lines) < 2:
        raise ClusterError(f"Flink's memory calculator failed:\n{(result.stdout + result.stderr)[-2000:]}")
    return lines[0].split(), lines[1].split()


def _start_local_spark(processes: _Processes, home: str, workers: int, work_dir: str) -> str:
    """Standalone master + `workers` workers (one core each); returns the master URL."""
    master_port, ui_port, *worker_ui_ports = free_ports(2 + workers)
    java = [_java(), *JAVA_OPENS, "-cp", os.path.join(home, "jars", "*")]
    # A worker starts executors with Spark's launcher, which needs the Scala version (Spark's scripts set it).
    env = {"SPARK_HOME": home, "SPARK_SCALA_VERSION": "2.12", "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_LOCAL_DIRS": work_dir}
    processes.start("spark-master", [*java, "-Xmx512m", "org.apache.spark.deploy.master.Master", "--host",
                                     "127.0.0.1", "--port", str(master_port), "--webui-port", str(ui_port)], env)
    master = f"spark://127.0.0.1:{master_port}"
    for index in range(workers):
        worker_dir = os.path.join(work_dir, f"worker{index}")
        os.makedirs(worker_dir, exist_ok=True)
        processes.start(f"spark-worker{index}", [
            *java, "-Xmx512m", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "1",
            "--memory", "1536m", "--webui-port", str(worker_ui_ports[index]), "--work-dir", worker_dir, master], env)

    def ready():
        state = _json(f"http://127.0.0.1:{ui_port}/json/")
        return bool(state) and state.get("aliveworkers", 0) >= workers

    processes.wait_until(ready, f"local Spark cluster (master + {workers} workers)")
    return master


def _start_job_server(processes: _Processes, runner: str, cache: str, master: str, spark_home: Optional[str],
                      local_cluster: bool) -> int:
    """Beam's job server for `runner` in front of `master`; returns its job port."""
    job_port, artifact_port = free_ports(2)
    classpath, settings = [os.path.join(_beam_lib(cache, runner), "*")], []
    if runner == "flink":
        driver, master_flag = "org.apache.beam.runners.flink.FlinkJobServerDriver", "--flink-master"
        staging_jar = _flink_staging_jar(cache) if local_cluster else None  # see FLINK_STAGING_JAR
        if staging_jar:
            classpath.insert(0, staging_jar)
            settings.append(f"-D{FILES_TO_STAGE_PROPERTY}=")
    else:  # The Spark runner expects Spark itself on the classpath ("provided").
        classpath.append(os.path.join(spark_home, "jars", "*"))
        driver, master_flag = "org.apache.beam.runners.spark.SparkJobServerDriver", "--spark-master-url"
        if local_cluster:  # a `spark.*` system property of the driver is Spark configuration
            settings.append(f"-Dspark.executor.extraClassPath={classpath[0]}")
            # One Spark application for all the run's Beam jobs, run one after the other: the runner stops its
            # context after each job unless this property (Beam's SparkContextFactory.TEST_REUSE_SPARK_CONTEXT)
            # is set, and every new context registers an application and launches its executors again (a
            # trivial job 14 s -> 2 s after the first). The cluster is this run's alone, so nothing else uses it.
            settings.append("-Dbeam.spark.test.reuseSparkContext=true")
    processes.start(f"{runner}-job-server", [
        _java(), *JAVA_OPENS, *settings, "-Xmx1g", "-cp", ":".join(classpath), driver, master_flag, master,
        "--job-host", "127.0.0.1", "--job-port", str(job_port), "--artifact-port", str(artifact_port),
        "--expansion-port", "0"], {"SPARK_LOCAL_IP": "127.0.0.1"} if runner == "spark" else None)
    processes.wait_until(lambda: _port_open(job_port), f"Beam {runner} job server")
    return job_port


def _beam_lib(cache: str, runner: str) -> str:
    """The folder of the jars of Beam's job server for `runner`."""
    return os.path.join(cache, f"beam-{BEAM_JAVA_VERSION}-{runner}", "lib")


def _flink_staging_jar(cache: str) -> Optional[str]:
    """tools/beam_staging's jar (see FLINK_STAGING_JAR), or None where there was no javac to build it."""
    jar = os.path.join(cache, f"beam-{BEAM_JAVA_VERSION}-flink", FLINK_STAGING_JAR)
    return jar if os.path.exists(jar) else None


def _flink_cluster_beam_jars(cache: str) -> List[str]:
    """The Beam jars a local Flink cluster needs on its classpath: none where jobs stage them (no staging jar)."""
    if not _flink_staging_jar(cache):
        return []
    return sorted(jar for jar in glob.glob(os.path.join(_beam_lib(cache, "flink"), "*.jar"))
                  if not os.path.basename(jar).startswith(FLINK_PROVIDES))


@contextlib.contextmanager
def portable_runner_args(runner: str, flink_master: Optional[str] = None, spark_master: Optional[str] = None,
                         workers: int = 2, log_dir: Optional[str] = None) -> Iterator[List[str]]:
    """Yields the Beam arguments that run a pipeline on `runner` ("flink" or "spark"); see the module doc."""
    if runner not in RUNNERS:
        raise ValueError(f"runner must be one of {RUNNERS}, got {runner!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    cache = fetch(runner)
    work_dir = tempfile.mkdtemp(prefix=f"tfmodels-{runner}-")
    log_dir = log_dir or os.path.join(work_dir, "logs")
    os.makedirs(log_dir, exist_ok=True)
    processes = _Processes(log_dir)
    try:
        spark_home = os.path.join(cache, f"spark-{SPARK_VERSION}", f"pyspark-{SPARK_VERSION}", "deps")
        if runner == "flink":
            home = os.path.join(cache, f"flink-{FLINK_VERSION}", f"apache-flink-libraries-{FLINK_VERSION}", "deps")
            master = flink_master or _start_local_flink(processes, home, workers, work_dir,
                                                        _flink_cluster_beam_jars(cache))
        else:
            master = spark_master or _start_local_spark(processes, spark_home, workers, work_dir)
        local = (flink_master if runner == "flink" else spark_master) is None
        job_port = _start_job_server(processes, runner, cache, master, spark_home, local)
        args = ["--runner=PortableRunner", f"--job_endpoint=127.0.0.1:{job_port}", "--environment_type=LOOPBACK"]
        if runner == "spark" and local:
            args += [f"--files_to_stage={jar}" for jar in glob.glob(
                os.path.join(_beam_lib(cache, runner), SPARK_STAGED_JAR))[:1]]
        # The Flink runner's default parallelism on a remote cluster is 1: one TaskManager would do all the work.
        with worker_pool_on_loopback() if local else contextlib.nullcontext():
            yield args + ([f"--parallelism={workers}"] if runner == "flink" else [])
    except BaseException:
        processes.stop_all()
        _drop_jar_copies(work_dir)
        raise  # the rest of the work directory stays: the logs the error names, the settings
    processes.stop_all()
    shutil.rmtree(work_dir, ignore_errors=True)


def _drop_jar_copies(work_dir: str) -> None:
    """Removes the cluster's copies of the job server's jars from a failed run's work directory (Flink's blob
    stores, the jars in Spark's application folders): some hundred MB per job, and nothing to read."""
    for folder, subfolders, files in os.walk(work_dir):
        for name in [name for name in subfolders if name.startswith("blobStore-")]:
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
            subfolders.remove(name)
        for name in files:
            if name.endswith(".jar"):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(folder, name))
