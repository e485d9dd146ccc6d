package dev.grantline.helm;

import com.marcnuri.helm.Helm;
import com.marcnuri.helm.LintResult;
import com.marcnuri.helm.TemplateCommand;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Lints the chart and renders it with Helm's own engine, for the default values and for the
 * production-like values in ci/, then validates every object (KubernetesSchema) and the chart's
 * promises (ChartFacts). Prints one line per fact for test/deploy/helm.int.test.ts and ends with
 * `OK`, or prints each problem as `FAIL ...` and exits 1.
 *
 * Usage: ValidateChart CHART_DIR [OUTPUT_DIR [NAME=VALUES_FILE[,VALUES_FILE...]...]]; the rendered
 * manifests go to OUTPUT_DIR, and each NAME=... is one more scenario.
 */
public final class ValidateChart {
  /** The Kubernetes version the schema models are generated from (client-java-api 24: 1.32). */
  private static final String KUBE_VERSION = "1.32.0";

  private ValidateChart() {}

  public static void main(String[] args) throws Exception {
    Path chart = Path.of(args.length > 0 ? args[0] : "../grantline").toAbsolutePath().normalize();
    Path output = args.length > 1 ? Path.of(args[1]) : null;
    List<String> problems = new ArrayList<>();

    LintResult lint = new Helm(chart).lint().strict().call();
    lint.getMessages().forEach(m -> System.out.println("LINT " + m.replace('\n', ' ')));
    if (lint.isFailed()) problems.add("helm lint --strict failed");
    else System.out.println("LINT ok");

    Path renderable = renderableCopy(chart, null, null);
    Map<String, List<Path>> scenarios = new TreeMap<>();
    scenarios.put("default", List.of());
    scenarios.put("production", List.of(chart.resolve("ci/production-values.yaml")));
    // further scenarios from the command line: NAME=VALUES_FILE[,VALUES_FILE...], as helm's -f in order
    for (int i = 2; i < args.length; i++) {
      String[] scenario = args[i].split("=", 2);
      scenarios.put(scenario[0], java.util.Arrays.stream(scenario[1].split(",")).map(f -> Path.of(f).toAbsolutePath()).toList());
    }
    var schema = new KubernetesSchema();
    for (var scenario : scenarios.entrySet()) {
      String manifests;
      try {
        manifests = render(renderable, scenario.getValue(), Map.of());
      } catch (RuntimeException e) {
        problems.add(scenario.getKey() + ": helm template failed: " + e.getMessage());
        continue;
      }
      if (output != null) {
        Files.createDirectories(output);
        Files.writeString(output.resolve(scenario.getKey() + ".yaml"), manifests.replace(HOOK_STANDIN + ":", HOOK + ":"));
      }
      List<Map<String, Object>> objects = Yaml.documents(manifests);
      objects.forEach(ValidateChart::restoreHookAnnotation);
      System.out.println("RENDER " + scenario.getKey() + " " + objects.size() + " objects");
      for (var object : objects)
        schema.problems(object).forEach(p -> problems.add(scenario.getKey() + ": " + p));
      var facts = new ChartFacts(scenario.getKey(), objects).check();
      facts.facts().forEach(System.out::println);
      facts.problems().forEach(p -> problems.add(scenario.getKey() + ": " + p));
    }

    selfChecks(chart, schema, problems);

    problems.forEach(p -> System.out.println("FAIL " + p));
    System.out.println(problems.isEmpty() ? "OK" : problems.size() + " problem(s)");
    System.exit(problems.isEmpty() ? 0 : 1);
  }

  /**
   * The checks must be able to fail: a misspelt field must fail the schema validation, and an Ingress
   * path to the management port must fail the chart's checks.
   */
  private static void selfChecks(Path chart, KubernetesSchema schema, List<String> problems) throws java.io.IOException {
    List<String> caught = new ArrayList<>();
    try {
      String broken = render(renderableCopy(chart, null, null), List.of(), Map.of("podSecurityContext.runAsNonRot", true));
      for (var object : Yaml.documents(broken)) caught.addAll(schema.problems(object));
    } catch (RuntimeException e) {
      caught.add("helm template failed: " + e.getMessage());
    }
    if (caught.stream().anyMatch(p -> p.contains("runAsNonRot")))
      System.out.println("SELFCHECK schema refuses an unknown field: " + caught.get(0));
    else problems.add("self-check: a misspelt field (runAsNonRot) passed the schema validation");

    // values.schema.json: a misspelt secret would otherwise leave its Secret unmade, silently
    String refusal = null;
    try {
      render(renderableCopy(chart, null, null), List.of(), Map.of("secrets.sesionSigningKey.value", "x"));
    } catch (RuntimeException e) {
      refusal = e.getMessage();
    }
    if (refusal != null && refusal.contains("sesionSigningKey"))
      System.out.println("SELFCHECK values schema refuses a misspelt key: " + refusal.replace('\n', ' '));
    else problems.add("self-check: a misspelt values key (secrets.sesionSigningKey) was accepted");

    Path exposed = renderableCopy(chart, "ingress.yaml", text -> text.replace("name: http", "name: management"));
    var objects = Yaml.documents(render(exposed, List.of(), Map.of()));
    objects.forEach(ValidateChart::restoreHookAnnotation);
    var found = new ChartFacts("selfcheck", objects).check().problems();
    if (found.stream().anyMatch(p -> p.contains("management port")))
      System.out.println("SELFCHECK chart checks refuse the management port on the Ingress: " + found.get(0));
    else problems.add("self-check: an Ingress path to the management port passed the chart checks");
  }

  private static final String HOOK = "helm.sh/hook";
  private static final String HOOK_STANDIN = "grantline.dev/validated-hook";

  /**
   * helm-java's template returns the release's manifest without its hooks (the helm CLI appends them),
   * so the migration Job and the Secret it reads would go unchecked. Renders a copy of the chart whose
   * templates carry the hook annotation under another name, so that Helm renders them as manifests;
   * restoreHookAnnotation puts the name back before anything is checked.
   */
  private static Path renderableCopy(Path chart, String breakFile, java.util.function.UnaryOperator<String> breakIt)
      throws java.io.IOException {
    Path copy = Files.createTempDirectory("grantline-chart-");
    try (var files = Files.walk(chart)) {
      for (Path source : files.toList()) {
        Path target = copy.resolve(chart.relativize(source).toString());
        if (Files.isDirectory(source)) Files.createDirectories(target);
        else if (source.toString().endsWith(".yaml") && source.getParent().endsWith("templates"))
        {
          String text = Files.readString(source).replace(HOOK + ":", HOOK_STANDIN + ":");
          Files.writeString(target, source.getFileName().toString().equals(breakFile) ? breakIt.apply(text) : text);
        }
        else Files.copy(source, target);
      }
    }
    return copy;
  }

  private static void restoreHookAnnotation(Map<String, Object> object) {
    Map<String, Object> annotations = Yaml.map(Yaml.path(object, "metadata", "annotations"));
    if (annotations.containsKey(HOOK_STANDIN)) annotations.put(HOOK, annotations.remove(HOOK_STANDIN));
  }

  private static String render(Path chart, List<Path> values, Map<String, Object> set) {
    TemplateCommand template =
        new Helm(chart).template().withName("grantline").withNamespace("grantline").withKubeVersion(KUBE_VERSION);
    for (Path file : values) template = template.withValuesFile(file);
    for (var entry : set.entrySet()) template = template.set(entry.getKey(), entry.getValue());
    return template.call();
  }
}
