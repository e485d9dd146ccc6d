package dev.grantline.helm;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.constructor.SafeConstructor;

/** Parsing rendered manifests, and walking the maps they become. */
final class Yaml {
  private Yaml() {}

  /** Every non-empty document of a multi-document stream. A repeated key is an error, not a silent overwrite. */
  @SuppressWarnings("unchecked")
  static List<Map<String, Object>> documents(String manifests) {
    LoaderOptions options = new LoaderOptions();
    options.setAllowDuplicateKeys(false);
    var yaml = new org.yaml.snakeyaml.Yaml(new SafeConstructor(options));
    var out = new ArrayList<Map<String, Object>>();
    for (Object document : yaml.loadAll(manifests)) {
      if (document == null) continue;
      if (!(document instanceof Map)) throw new IllegalArgumentException("a document is not an object: " + document);
      out.add((Map<String, Object>) document);
    }
    return out;
  }

  /** The value at {@code keys} below {@code object}, or null. */
  static Object path(Object object, String... keys) {
    Object current = object;
    for (String key : keys) {
      if (!(current instanceof Map<?, ?> map)) return null;
      current = map.get(key);
    }
    return current;
  }

  @SuppressWarnings("unchecked")
  static Map<String, Object> map(Object value) {
    return value instanceof Map<?, ?> ? (Map<String, Object>) value : Map.of();
  }

  static List<?> list(Object value) {
    return value instanceof List<?> l ? l : List.of();
  }

  /** The containers of a Deployment's or Job's pod template. */
  @SuppressWarnings("unchecked")
  static List<Map<String, Object>> containers(Map<String, Object> object) {
    var out = new ArrayList<Map<String, Object>>();
    for (Object c : list(path(object, "spec", "template", "spec", "containers"))) out.add((Map<String, Object>) c);
    return out;
  }
}
