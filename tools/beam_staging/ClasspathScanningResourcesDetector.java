// Beam's class of this name, with one change: where the JVM property `tfmodels.beam.filesToStage` is set, the
// files it lists (path-separator separated; empty: none) are what a job stages, instead of the whole classpath.
//
// Why: Beam 2.62's FlinkJobInvoker stages the job server's classpath with every job (it calls
// `detectClassPathResourcesToStage`; neither `--files_to_stage` nor the detector option reaches it from a
// portable pipeline), 162 jars, 152 MB through Flink's REST API per job. tools/beam_runners.sh compiles this
// into a jar that the job server of a *local* cluster (tfx_pipeline/beam_clusters.py) puts before Beam's own
// jars, and that cluster's JobManager and TaskManagers have Beam's jars on their classpath instead.
package org.apache.beam.sdk.util.construction.resources;

import io.github.classgraph.ClassGraph;
import io.github.classgraph.ScanResult;
import java.io.File;
import java.util.ArrayList;
import java.util.List;

public class ClasspathScanningResourcesDetector implements PipelineResourcesDetector {
  public static final String FILES_TO_STAGE_PROPERTY = "tfmodels.beam.filesToStage";

  private transient ClassGraph classGraph;

  public ClasspathScanningResourcesDetector(ClassGraph classGraph) {
    this.classGraph = classGraph;
  }

  @Override
  public List<String> detect(ClassLoader classLoader) {
    String given = System.getProperty(FILES_TO_STAGE_PROPERTY);
    if (given != null) {
      List<String> files = new ArrayList<>();
      for (String path : given.split(File.pathSeparator)) {
        if (!path.isEmpty()) {
          files.add(new File(path).getAbsolutePath());
        }
      }
      return files;
    }
    // Beam's own behaviour: every file of the class loader's classpath.
    List<String> files = new ArrayList<>();
    try (ScanResult scan = classGraph.disableNestedJarScanning().addClassLoader(classLoader).scan(1)) {
      for (File file : scan.getClasspathFiles()) {
        files.add(file.getAbsolutePath());
      }
    }
    return files;
  }
}
