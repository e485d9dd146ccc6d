package dev.grantline.helm;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * What the chart promises beyond valid objects: probes, resources and a non-root, read-only container
 * in every Deployment; the management port off the Ingress; autoscalers for token and introspection; a
 * disruption budget and a Service per service; a migration hook; one Secret per key purpose. Also
 * prints the facts the vitest side compares with the code's own tables (routes, key variables).
 */
final class ChartFacts {
  static final List<String> SERVICES = List.of("registry", "authorization", "consent", "token", "introspection");

  private final String scenario;
  private final List<Map<String, Object>> objects;
  private final List<String> problems = new ArrayList<>();
  private final List<String> facts = new ArrayList<>();

  ChartFacts(String scenario, List<Map<String, Object>> objects) {
    this.scenario = scenario;
    this.objects = objects;
  }

  List<String> problems() {
    return problems;
  }

  List<String> facts() {
    return facts;
  }

  private List<Map<String, Object>> ofKind(String kind) {
    return objects.stream().filter(o -> kind.equals(o.get("kind"))).toList();
  }

  private static String name(Map<String, Object> o) {
    return String.valueOf(Yaml.path(o, "metadata", "name"));
  }

  private static String component(Map<String, Object> o) {
    return String.valueOf(Yaml.path(o, "metadata", "labels", "app.kubernetes.io/component"));
  }

  private void require(boolean ok, String problem) {
    if (!ok) problems.add(problem);
  }

  ChartFacts check() {
    var deployments = ofKind("Deployment");
    var services = ofKind("Service");
    Map<String, Map<String, Object>> serviceByName = new HashMap<>();
    services.forEach(s -> serviceByName.put(name(s), s));
    Set<String> components = new HashSet<>();
    for (var d : deployments) {
      components.add(component(d));
      checkDeployment(d, services);
    }
    for (String service : SERVICES) require(components.contains(service), "no Deployment for " + service);
    checkIngress(serviceByName);
    checkAutoscalers(deployments);
    checkDisruptionBudgets();
    checkMigration();
    checkSecretsPerPurpose(deployments);
    checkNetworkPolicies();
    for (var o : objects) facts.add("OBJECT " + scenario + " " + o.get("kind") + " " + name(o));
    for (var cm : ofKind("ConfigMap"))
      if (name(cm).endsWith("-common"))
        for (String key : List.of("HOST", "PORT", "MANAGEMENT_PORT", "KAFKA_TOPIC_PARTITIONS", "NODE_ENV"))
          facts.add("CONFIG " + scenario + " " + key + " " + Yaml.map(cm.get("data")).get(key));
    return this;
  }

  private void checkDeployment(Map<String, Object> d, List<Map<String, Object>> services) {
    String where = "Deployment " + name(d) + ": ";
    Map<String, Object> pod = Yaml.map(Yaml.path(d, "spec", "template", "spec"));
    require(Boolean.TRUE.equals(Yaml.path(pod, "securityContext", "runAsNonRoot")), where + "pod not runAsNonRoot");
    require(Boolean.FALSE.equals(pod.get("automountServiceAccountToken")), where + "mounts a ServiceAccount token");
    for (var c : Yaml.containers(d)) {
      String cw = where + "container " + c.get("name") + ": ";
      require(c.get("readinessProbe") != null, cw + "no readinessProbe");
      require(c.get("livenessProbe") != null, cw + "no livenessProbe");
      for (String bound : List.of("requests", "limits"))
        for (String resource : List.of("cpu", "memory"))
          require(Yaml.path(c, "resources", bound, resource) != null, cw + "no resources." + bound + "." + resource);
      require(Boolean.TRUE.equals(Yaml.path(c, "securityContext", "readOnlyRootFilesystem")), cw + "root filesystem writable");
      require(Boolean.FALSE.equals(Yaml.path(c, "securityContext", "allowPrivilegeEscalation")), cw + "may escalate privileges");
      require(Yaml.list(Yaml.path(c, "securityContext", "capabilities", "drop")).contains("ALL"), cw + "keeps capabilities");
      for (String probe : List.of("readinessProbe", "livenessProbe")) {
        Object port = Yaml.path(c, probe, "httpGet", "port");
        if (port != null)
          require(!"management".equals(port), cw + probe + " on the management port: it would pass while the public listener is down");
      }
    }
    // a Service and a disruption budget select these pods
    Map<String, Object> podLabels = Yaml.map(Yaml.path(d, "spec", "template", "metadata", "labels"));
    boolean selected = services.stream()
        .anyMatch(s -> !Yaml.map(Yaml.path(s, "spec", "selector")).isEmpty()
            && podLabels.entrySet().containsAll(Yaml.map(Yaml.path(s, "spec", "selector")).entrySet()));
    require(selected, where + "no Service selects its pods");
    Map<String, Object> selector = Yaml.map(Yaml.path(d, "spec", "selector", "matchLabels"));
    require(!selector.isEmpty() && podLabels.entrySet().containsAll(selector.entrySet()), where + "selector does not match its pod labels");
  }

  /**
   * Each rule of a NetworkPolicy names its ports and its sources (a rule without {@code from} admits
   * every pod, one without {@code ports} every port). Prints, per port, who may connect: NETPOL
   * scenario port peers-as-JSON.
   */
  private void checkNetworkPolicies() {
    var gson = new com.google.gson.Gson();
    for (var policy : ofKind("NetworkPolicy")) {
      String where = "NetworkPolicy " + name(policy) + ": ";
      require(Yaml.list(Yaml.path(policy, "spec", "policyTypes")).contains("Ingress"), where + "restricts no ingress");
      for (var rule : Yaml.list(Yaml.path(policy, "spec", "ingress"))) {
        var from = Yaml.list(Yaml.map(rule).get("from"));
        var ports = Yaml.list(Yaml.map(rule).get("ports"));
        require(!from.isEmpty(), where + "a rule open to every source");
        require(!ports.isEmpty(), where + "a rule open on every port");
        for (var port : ports)
          facts.add("NETPOL " + scenario + " " + Yaml.map(port).get("port") + " " + gson.toJson(from));
      }
    }
  }

  private void checkIngress(Map<String, Map<String, Object>> serviceByName) {
    for (var ingress : ofKind("Ingress")) {
      for (Object rule : Yaml.list(Yaml.path(ingress, "spec", "rules"))) {
        for (Object p : Yaml.list(Yaml.path(rule, "http", "paths"))) {
          String path = String.valueOf(Yaml.path(p, "path"));
          String backend = String.valueOf(Yaml.path(p, "backend", "service", "name"));
          Object portName = Yaml.path(p, "backend", "service", "port", "name");
          Object portNumber = Yaml.path(p, "backend", "service", "port", "number");
          String where = "Ingress path " + path + ": ";
          var service = serviceByName.get(backend);
          require(service != null, where + "no Service " + backend);
          if (service != null) {
            for (Object sp : Yaml.list(Yaml.path(service, "spec", "ports"))) {
              boolean same = Objects.equals(Yaml.path(sp, "name"), portName)
                  || (portNumber != null && Objects.equals(Yaml.path(sp, "port"), portNumber));
              if (same)
                require(!"management".equals(Yaml.path(sp, "name")) && !"management".equals(Yaml.path(sp, "targetPort")),
                    where + "routes to the management port of " + backend);
            }
          }
          require(portName != null ? "http".equals(portName) : portNumber != null, where + "backend port is not the public one");
          facts.add("INGRESS " + scenario + " " + path + " " + Yaml.path(p, "pathType") + " " + component(service == null ? Map.of() : service) + " " + (portName != null ? portName : portNumber));
        }
      }
    }
  }

  private void checkAutoscalers(List<Map<String, Object>> deployments) {
    Set<String> deploymentNames = new HashSet<>();
    deployments.forEach(d -> deploymentNames.add(name(d)));
    Set<String> scaled = new HashSet<>();
    for (var hpa : ofKind("HorizontalPodAutoscaler")) {
      String target = String.valueOf(Yaml.path(hpa, "spec", "scaleTargetRef", "name"));
      require(deploymentNames.contains(target), "HorizontalPodAutoscaler " + name(hpa) + ": no Deployment " + target);
      scaled.add(component(hpa));
      facts.add("HPA " + scenario + " " + component(hpa));
    }
    for (String s : List.of("token", "introspection")) require(scaled.contains(s), "no HorizontalPodAutoscaler for " + s);
    for (var d : deployments)
      if (scaled.contains(component(d)))
        require(Yaml.path(d, "spec", "replicas") == null, "Deployment " + name(d) + ": sets replicas although autoscaled (every upgrade would reset the count)");
  }

  private void checkDisruptionBudgets() {
    Set<String> budgeted = new HashSet<>();
    ofKind("PodDisruptionBudget").forEach(p -> budgeted.add(component(p)));
    for (String s : SERVICES) require(budgeted.contains(s), "no PodDisruptionBudget for " + s);
  }

  private void checkMigration() {
    var jobs = ofKind("Job").stream().filter(j -> "migrate".equals(component(j))).toList();
    require(jobs.size() == 1, "expected one migration Job, found " + jobs.size());
    for (var job : jobs) {
      String hook = String.valueOf(Yaml.path(job, "metadata", "annotations", "helm.sh/hook"));
      require(hook.contains("pre-install") && hook.contains("pre-upgrade"), "migration Job is not a pre-install,pre-upgrade hook");
      require(Yaml.containers(job).stream().allMatch(c -> List.of("migrate").equals(c.get("args"))), "migration Job does not run `migrate`");
    }
  }

  /**
   * Each key variable comes from a Secret of its own purpose: no two variables share a Secret, and no
   * key sits in a ConfigMap. Prints which service gets which variable, for the vitest to compare with
   * KEY_PURPOSES.
   */
  private void checkSecretsPerPurpose(List<Map<String, Object>> deployments) {
    Map<String, String> secretOfVariable = new HashMap<>();
    Map<String, Set<String>> variablesOfSecret = new HashMap<>();
    for (var d : deployments) {
      for (var c : Yaml.containers(d)) {
        for (Object e : Yaml.list(c.get("env"))) {
          Object ref = Yaml.path(e, "valueFrom", "secretKeyRef");
          if (ref == null) continue;
          String variable = String.valueOf(Yaml.path(e, "name"));
          String secret = Yaml.path(ref, "name") + "/" + Yaml.path(ref, "key");
          facts.add("SECRETENV " + scenario + " " + component(d) + " " + variable + " " + secret);
          String before = secretOfVariable.putIfAbsent(component(d) + " " + variable, secret);
          require(before == null || before.equals(secret), variable + " of " + component(d) + " comes from two Secrets: " + before + ", " + secret);
          variablesOfSecret.computeIfAbsent(secret, k -> new HashSet<>()).add(variable);
        }
      }
    }
    // the admin token is one variable in three services, DATABASE_URL in five: one variable per Secret key
    variablesOfSecret.forEach((secret, variables) ->
        require(variables.size() == 1, "Secret " + secret + " serves several purposes: " + variables));
    for (var cm : ofKind("ConfigMap"))
      for (String key : Yaml.map(cm.get("data")).keySet())
        require(!key.endsWith("_KEY") && !key.endsWith("_KEYS") && !key.equals("GRANTLINE_ADMIN_TOKEN")
                && !key.equals("DATABASE_URL") && !key.equals("REDIS_URL") && !key.equals("KAFKA_SASL_PASSWORD"),
            "ConfigMap " + name(cm) + " holds a secret: " + key);
  }
}
