#!/usr/bin/env bash
# Fetches, once, what `--runner flink|spark` needs to start local clusters and Beam job servers:
#   <cache>/flink-<FLINK>/apache-flink-libraries-<FLINK>/deps/   FLINK_HOME (lib/), from PyPI apache-flink-libraries
#   <cache>/spark-<SPARK>/pyspark-<SPARK>/deps/                  SPARK_HOME (jars/), from PyPI pyspark's sources
#   <cache>/beam-<BEAM>-<runner>/lib/*.jar   the Beam job server's classpath, resolved by Maven
#   <cache>/beam-<BEAM>-flink/staging/tfmodels-beam-staging.jar   tools/beam_staging compiled (when javac is
#                                            there: without it a local Flink cluster is slower, not broken)
# and prints the cache directory. Usage: tools/beam_runners.sh [flink] [spark]   (both when none is named)
#
# Why not the shaded job-server jars (beam-runners-flink-1.18-job-server, beam-runners-spark-3-job-server)?
# Maven Central as reached here serves none of them at any version, nor the Flink 1.18 runner; the runner
# modules themselves resolve at Beam 2.62.0 (Flink 1.19, Spark 3), so we assemble the same classpath from
# them and start the same driver classes. The job API between our Python SDK (2.59) and the 2.62 job
# server is Beam's portable protocol; tests/tfx_pipeline/test_beam_clusters_e2e.py runs the pipeline on it.
set -euo pipefail
cd "$(dirname "$0")/.."

BEAM_JAVA=${TFMODELS_BEAM_JAVA_VERSION:-2.62.0}
FLINK=${TFMODELS_FLINK_VERSION:-1.19.3}
FLINK_MINOR=${FLINK%.*}
SPARK=${TFMODELS_SPARK_VERSION:-3.5.3}
CACHE=${TFMODELS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tfmodels}
PY=${PY:-.venv/bin/python}

need() {
  command -v "$1" >/dev/null 2>&1 && return
  cat >&2 <<MSG
error: '$1' not found. --runner flink|spark starts a local cluster and a Beam job server, which need
Java 17 (java) and Maven (mvn) to fetch the job server's jars from Maven Central:
  apt-get install openjdk-17-jdk-headless maven   (a JRE will do; the JDK's javac makes Flink jobs faster)
or run against a cluster you already have: --flink-master host:port / --spark-master spark://host:port
with --job-endpoint host:port of a Beam job server next to it.
MSG
  exit 2
}

# The job server's classpath: the runner module and Beam's job service, with their dependencies.
resolve_classpath() {  # runner artifact
  local runner=$1 artifact=$2 dest="$CACHE/beam-$BEAM_JAVA-$1"
  [ -f "$dest/.done" ] && return
  mkdir -p "$dest"
  cat >"$dest/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>tfmodels</groupId><artifactId>beam-$runner-job-server</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.beam</groupId><artifactId>$artifact</artifactId><version>$BEAM_JAVA</version></dependency>
    <dependency><groupId>org.apache.beam</groupId><artifactId>beam-runners-java-job-service</artifactId><version>$BEAM_JAVA</version></dependency>
    <!-- the job server's log (without a binding SLF4J drops it) -->
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>1.7.30</version></dependency>
  </dependencies>
</project>
POM
  echo "beam_runners: resolving $artifact:$BEAM_JAVA with Maven into $dest/lib" >&2
  if ! mvn -B -f "$dest/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dest/lib" \
      >"$dest/mvn.log" 2>&1; then
    tail -40 "$dest/mvn.log" >&2
    echo "error: Maven could not resolve $artifact:$BEAM_JAVA (log: $dest/mvn.log)" >&2
    exit 1
  fi
  touch "$dest/.done"
}

# A PyPI source archive unpacked into <cache>/<folder>/ (the archive holds the distribution's jars).
fetch_sdist() {  # package version folder what
  local package=$1 version=$2 dest="$CACHE/$3"
  [ -f "$dest/.done" ] && return
  echo "beam_runners: fetching $package==$version ($4) into $dest" >&2
  mkdir -p "$dest/download"
  "$PY" -m pip download -q --no-deps --no-binary :all: "$package==$version" -d "$dest/download" >&2
  tar -xzf "$dest/download/$package-$version.tar.gz" -C "$dest"
  rm -rf "$dest/download"
  touch "$dest/.done"
}

# The Flink job server's staging override (tools/beam_staging/*.java; why: tfx_pipeline/beam_clusters.py), compiled
# against the job server's classpath. Optional: with a JRE only, jobs stage Beam's jars as Beam does by default.
build_staging_jar() {
  local dest="$CACHE/beam-$BEAM_JAVA-flink/staging" source=tools/beam_staging/ClasspathScanningResourcesDetector.java
  local jar="$dest/tfmodels-beam-staging.jar" digest build
  digest=$(sha256sum "$source" | cut -d' ' -f1)
  [ -f "$jar" ] && [ "$(cat "$dest/source.sha256" 2>/dev/null)" = "$digest" ] && return
  if ! command -v javac >/dev/null 2>&1; then
    echo "beam_runners: no javac (a JDK): Flink jobs will stage the job server's classpath (slower)" >&2
    return
  fi
  mkdir -p "$dest"
  build=$(mktemp -d "$dest/build.XXXXXX")  # a job server may be using the jar: replace it in one move
  javac --release 8 -nowarn -cp "$CACHE/beam-$BEAM_JAVA-flink/lib/*" -d "$build/classes" "$source" >&2
  jar cf "$build/staging.jar" -C "$build/classes" .
  mv -f "$build/staging.jar" "$jar" && echo "$digest" >"$dest/source.sha256"
  rm -rf "$build"
}

need java
need mvn
runners=("$@")
[ ${#runners[@]} -eq 0 ] && runners=(flink spark)
for runner in "${runners[@]}"; do
  case $runner in
    flink) fetch_sdist apache-flink-libraries "$FLINK" "flink-$FLINK" "Flink's jars"
           resolve_classpath flink "beam-runners-flink-$FLINK_MINOR"
           build_staging_jar ;;
    spark) fetch_sdist pyspark "$SPARK" "spark-$SPARK" "Spark's distribution"
           resolve_classpath spark beam-runners-spark-3 ;;
    *) echo "error: unknown runner '$runner' (flink or spark)" >&2; exit 2 ;;
  esac
done
echo "$CACHE"
