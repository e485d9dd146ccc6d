package dev.grantline.helm;

import com.google.gson.Gson;
import com.google.gson.JsonElement;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Validates one rendered object against the Kubernetes OpenAPI schema, as the official Java client
 * (io.kubernetes:client-java-api) generates it: each model's {@code validateJsonElement} refuses a
 * field the schema does not define, a missing required field and a wrong JSON type, recursively. On
 * top, what the API server checks that the schema does not say: name and label syntax.
 */
final class KubernetesSchema {
  /** The kinds this chart may render, at the API version the cluster serves them. */
  private static final Map<String, String> KINDS =
      Map.ofEntries(
          Map.entry("ConfigMap", "v1"),
          Map.entry("Secret", "v1"),
          Map.entry("Service", "v1"),
          Map.entry("ServiceAccount", "v1"),
          Map.entry("Deployment", "apps/v1"),
          Map.entry("Job", "batch/v1"),
          Map.entry("Ingress", "networking.k8s.io/v1"),
          Map.entry("HorizontalPodAutoscaler", "autoscaling/v2"),
          Map.entry("PodDisruptionBudget", "policy/v1"),
          Map.entry("NetworkPolicy", "networking.k8s.io/v1"));

  private static final Pattern DNS_SUBDOMAIN =
      Pattern.compile("[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");
  private static final Pattern DNS_LABEL = Pattern.compile("[a-z]([-a-z0-9]*[a-z0-9])?");
  private static final Pattern LABEL_VALUE =
      Pattern.compile("(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?");
  private static final Pattern PORT_NAME = Pattern.compile("[a-z0-9]([-a-z0-9]*[a-z0-9])?");

  private final Gson gson = new Gson();

  /** Every problem of {@code object}, each naming the object; empty when it is valid. */
  List<String> problems(Map<String, Object> object) {
    String kind = String.valueOf(object.get("kind"));
    String apiVersion = String.valueOf(object.get("apiVersion"));
    String name = String.valueOf(Yaml.path(object, "metadata", "name"));
    String where = kind + " " + name + ": ";
    String expected = KINDS.get(kind);
    if (expected == null) return List.of(where + "a kind this chart should not render");
    if (!expected.equals(apiVersion))
      return List.of(where + "apiVersion " + apiVersion + ", expected " + expected);
    var problems = new java.util.ArrayList<String>();
    try {
      schemaValidator(apiVersion, kind).invoke(null, gson.toJsonTree(object));
    } catch (InvocationTargetException e) {
      problems.add(where + "schema: " + e.getCause().getMessage());
    } catch (ReflectiveOperationException e) {
      problems.add(where + "no schema model: " + e);
    }
    int maxName = kind.equals("Service") ? 63 : 253;
    if (!DNS_SUBDOMAIN.matcher(name).matches() || name.length() > maxName)
      problems.add(where + "not a valid name (DNS-1123, at most " + maxName + " characters)");
    if (kind.equals("Service") && !DNS_LABEL.matcher(name).matches())
      problems.add(where + "a Service name must be a DNS-1035 label");
    labelProblems(where, Yaml.path(object, "metadata", "labels"), problems);
    labelProblems(where, Yaml.path(object, "spec", "template", "metadata", "labels"), problems);
    for (Map<String, Object> container : Yaml.containers(object)) {
      for (Object port : Yaml.list(container.get("ports"))) {
        Object portName = ((Map<?, ?>) port).get("name");
        if (portName != null
            && (portName.toString().length() > 15 || !PORT_NAME.matcher(portName.toString()).matches()))
          problems.add(where + "port name " + portName + " is not an IANA_SVC_NAME (15 characters at most)");
      }
    }
    return problems;
  }

  private static void labelProblems(String where, Object labels, List<String> problems) {
    if (!(labels instanceof Map<?, ?> map)) return;
    map.forEach(
        (key, value) -> {
          String v = String.valueOf(value);
          if (!(value instanceof String) || v.length() > 63 || !LABEL_VALUE.matcher(v).matches())
            problems.add(where + "label " + key + "=" + v + " is not a valid label value");
        });
  }

  /** {@code V1Deployment.validateJsonElement} for apps/v1 Deployment, and so on. */
  private static Method schemaValidator(String apiVersion, String kind) throws ReflectiveOperationException {
    String version = apiVersion.contains("/") ? apiVersion.substring(apiVersion.indexOf('/') + 1) : apiVersion;
    String model =
        "io.kubernetes.client.openapi.models." + Character.toUpperCase(version.charAt(0)) + version.substring(1) + kind;
    return Class.forName(model).getMethod("validateJsonElement", JsonElement.class);
  }
}
