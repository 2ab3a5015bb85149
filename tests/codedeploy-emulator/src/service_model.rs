//! Holding the emulator to AWS's own description of CodeDeploy: the service
//! model that the SDKs are generated from, as botocore ships it
//! (`botocore/data/codedeploy/<version>/service-2.json[.gz]`).
//!
//! When a model is configured, every answer the emulator gives is checked
//! against it before it leaves: a success body against the operation's output
//! shape (member names, types, enum values, required members, length and
//! range limits), an error against the exceptions the operation declares
//! (plus the errors common to every AWS JSON service). What does not fit is
//! recorded; [`crate::Emulator`] panics on drop when anything was, so a test
//! whose emulator drifted from the model fails.
//!
//! Not checked: `pattern` constraints (three string shapes have one).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value};

/// Errors any AWS JSON 1.1 service may answer, whatever the operation
/// declares (AWS's "Common Errors", and the protocol's own).
pub const COMMON_ERRORS: &[&str] = &[
    "AccessDeniedException",
    "IncompleteSignature",
    "InternalFailure",
    "InvalidAction",
    "InvalidClientTokenId",
    "MissingAuthenticationTokenException",
    "NotAuthorized",
    "OptInRequired",
    "RequestExpired",
    "SerializationException",
    "ServiceUnavailable",
    "ThrottlingException",
    "UnknownOperationException",
    "UnrecognizedClientException",
    "ValidationError",
    "ValidationException",
];

/// Enum values the real service answers although its model does not list
/// them, each documented by AWS: (shape, value).
///
/// * `MinimumHealthyHostsType` `MOST_CONCURRENCY`: "In a call to
///   GetDeploymentConfig, CodeDeployDefault.OneAtATime returns a minimum
///   healthy instance type of MOST_CONCURRENCY and a value of 1" (the
///   `MinimumHealthyHosts` documentation inside the model itself, and the
///   GetDeploymentConfig example of the API reference).
pub const DOCUMENTED_EXTRA_ENUM_VALUES: &[(&str, &str)] = &[("MinimumHealthyHostsType", "MOST_CONCURRENCY")];

#[derive(Debug)]
struct Operation {
    output: Option<String>,
    errors: Vec<String>,
}

/// A loaded service model.
#[derive(Debug)]
pub struct ServiceModel {
    /// Where it came from, for messages.
    pub source: String,
    operations: HashMap<String, Operation>,
    shapes: Map<String, Value>,
}

impl ServiceModel {
    /// Loads `service-2.json` or `service-2.json.gz`. Models are cached by
    /// path: every emulator of a test process shares one parse.
    pub fn load(path: &Path) -> Result<Arc<ServiceModel>, String> {
        static CACHE: OnceLock<Mutex<BTreeMap<PathBuf, Arc<ServiceModel>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(model) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(path) {
            return Ok(model.clone());
        }
        let raw = std::fs::read(path).map_err(|e| format!("cannot read the service model {}: {e}", path.display()))?;
        let text = if path.extension().is_some_and(|e| e == "gz") {
            let mut text = String::new();
            flate2::read::GzDecoder::new(raw.as_slice())
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot gunzip the service model {}: {e}", path.display()))?;
            text
        } else {
            String::from_utf8(raw).map_err(|e| format!("the service model {} is not UTF-8: {e}", path.display()))?
        };
        let model = Arc::new(ServiceModel::from_json(&text, &path.display().to_string())?);
        cache.lock().unwrap_or_else(|e| e.into_inner()).insert(path.to_path_buf(), model.clone());
        Ok(model)
    }

    /// Parses a model's JSON text; `source` names it in messages.
    pub fn from_json(text: &str, source: &str) -> Result<ServiceModel, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("{source} is not JSON: {e}"))?;
        let target = doc.pointer("/metadata/targetPrefix").and_then(Value::as_str);
        if target != Some("CodeDeploy_20141006") {
            return Err(format!("{source} is not the CodeDeploy 2014-10-06 model (targetPrefix {target:?})"));
        }
        let shapes = doc.get("shapes").and_then(Value::as_object).cloned().ok_or(format!("{source} has no shapes"))?;
        let shape_ref = |v: Option<&Value>| v.and_then(|v| v.get("shape")).and_then(Value::as_str).map(String::from);
        let operations = doc
            .get("operations")
            .and_then(Value::as_object)
            .ok_or(format!("{source} has no operations"))?
            .iter()
            .map(|(name, op)| {
                let errors = op
                    .get("errors")
                    .and_then(Value::as_array)
                    .map(|errs| errs.iter().filter_map(|e| shape_ref(Some(e))).collect())
                    .unwrap_or_default();
                (name.clone(), Operation { output: shape_ref(op.get("output")), errors })
            })
            .collect();
        Ok(ServiceModel { source: source.to_string(), operations, shapes })
    }

    /// Checks one answer. `operation` is `None` when the request named none
    /// the emulator could read; `Ok` carries a success body, `Err` an error's
    /// type and body. Returns what does not fit the model.
    pub fn check_answer(&self, operation: Option<&str>, answer: Result<&Value, (&str, &Value)>) -> Vec<String> {
        match (operation, answer) {
            (Some(op), Ok(body)) => self.check_output(op, body),
            (None, Ok(_)) => vec!["a success answer to a request without an operation".into()],
            (op, Err((code, body))) => self.check_error(op, code, body),
        }
    }

    /// Checks a success body against `operation`'s output shape.
    pub fn check_output(&self, operation: &str, body: &Value) -> Vec<String> {
        let Some(op) = self.operations.get(operation) else {
            return vec![format!("{operation} answered, but the model has no such operation")];
        };
        let mut out = Vec::new();
        match &op.output {
            Some(shape) => self.check_shape(shape, body, "$", &mut out),
            None if body.as_object().is_some_and(Map::is_empty) => {}
            None => out.push(format!("$: {operation} has no output in the model, but answered {body}")),
        }
        out
    }

    /// Checks an error answer: its type must be one `operation` declares (or
    /// a common one), and its body must fit that exception's shape.
    pub fn check_error(&self, operation: Option<&str>, code: &str, body: &Value) -> Vec<String> {
        let mut out = Vec::new();
        let declared = operation.and_then(|op| self.operations.get(op)).is_some_and(|op| op.errors.iter().any(|e| e == code));
        let common = COMMON_ERRORS.contains(&code);
        if !declared && !common {
            out.push(format!(
                "error {code} is neither declared by {} in the model nor common to AWS JSON services",
                operation.unwrap_or("(no operation)")
            ));
        }
        let Some(obj) = body.as_object() else {
            out.push(format!("error body is not an object: {body}"));
            return out;
        };
        if obj.get("__type").and_then(Value::as_str) != Some(code) {
            out.push(format!("error body's __type is not {code}: {body}"));
        }
        // `message` belongs to the protocol (botocore reads it from any
        // error); most of CodeDeploy's exception shapes do not list it.
        match obj.get("message") {
            None | Some(Value::String(_)) => {}
            Some(other) => out.push(format!("$.message: expected a string, got {other}")),
        }
        let rest: Map<String, Value> =
            obj.iter().filter(|(k, _)| *k != "__type" && *k != "message").map(|(k, v)| (k.clone(), v.clone())).collect();
        if declared {
            self.check_shape(code, &Value::Object(rest), "$", &mut out);
        } else if !rest.is_empty() {
            out.push(format!("$: a common error carries only __type and message, got {body}"));
        }
        out
    }

    fn check_shape(&self, name: &str, value: &Value, path: &str, out: &mut Vec<String>) {
        let Some(shape) = self.shapes.get(name) else {
            out.push(format!("{path}: shape {name} is not in the model"));
            return;
        };
        let limit = |key: &str| shape.get(key).and_then(Value::as_f64);
        let (min, max) = (limit("min"), limit("max"));
        let ty = shape.get("type").and_then(Value::as_str).unwrap_or("");
        let mismatch = |out: &mut Vec<String>| out.push(format!("{path}: expected {ty} ({name}), got {value}"));
        match ty {
            "structure" => {
                let Some(obj) = value.as_object() else { return mismatch(out) };
                let members = shape.get("members").and_then(Value::as_object);
                for (key, member_value) in obj {
                    let child = format!("{path}.{key}");
                    match members.and_then(|m| m.get(key)).and_then(|m| m.get("shape")).and_then(Value::as_str) {
                        Some(member_shape) => self.check_shape(member_shape, member_value, &child, out),
                        None => out.push(format!("{child}: {name} has no member {key}")),
                    }
                }
                for required in shape.get("required").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(required) = required.as_str()
                        && !obj.contains_key(required)
                    {
                        out.push(format!("{path}: required member {required} of {name} is missing"));
                    }
                }
            }
            "list" => {
                let Some(items) = value.as_array() else { return mismatch(out) };
                check_len(items.len(), min, max, path, out);
                if let Some(member) = shape.pointer("/member/shape").and_then(Value::as_str) {
                    for (i, item) in items.iter().enumerate() {
                        self.check_shape(member, item, &format!("{path}[{i}]"), out);
                    }
                }
            }
            "map" => {
                let Some(obj) = value.as_object() else { return mismatch(out) };
                check_len(obj.len(), min, max, path, out);
                let key_shape = shape.pointer("/key/shape").and_then(Value::as_str);
                let value_shape = shape.pointer("/value/shape").and_then(Value::as_str);
                for (k, v) in obj {
                    let child = format!("{path}.{k}");
                    if let Some(key_shape) = key_shape {
                        self.check_shape(key_shape, &Value::String(k.clone()), &format!("{child} (key)"), out);
                    }
                    if let Some(value_shape) = value_shape {
                        self.check_shape(value_shape, v, &child, out);
                    }
                }
            }
            "string" => {
                let Some(s) = value.as_str() else { return mismatch(out) };
                if let Some(values) = shape.get("enum").and_then(Value::as_array)
                    && !values.iter().any(|v| v.as_str() == Some(s))
                    && !DOCUMENTED_EXTRA_ENUM_VALUES.contains(&(name, s))
                {
                    out.push(format!("{path}: {s:?} is not a value of {name} ({})", join(values)));
                }
                check_len(s.chars().count(), min, max, path, out);
            }
            "integer" | "long" => {
                let Some(n) = value.as_i64() else { return mismatch(out) };
                if ty == "integer" && i32::try_from(n).is_err() {
                    out.push(format!("{path}: {n} does not fit a 32-bit integer"));
                }
                if min.is_some_and(|m| (n as f64) < m) || max.is_some_and(|m| (n as f64) > m) {
                    out.push(format!("{path}: {n} is outside {name}'s range {min:?}..{max:?}"));
                }
            }
            "double" | "float" => {
                if !value.is_number() {
                    mismatch(out)
                }
            }
            "boolean" => {
                if !value.is_boolean() {
                    mismatch(out)
                }
            }
            // JSON 1.1 sends timestamps as epoch seconds.
            "timestamp" => {
                if !value.is_number() {
                    mismatch(out)
                }
            }
            "blob" => {
                if !value.is_string() {
                    mismatch(out)
                }
            }
            other => out.push(format!("{path}: shape {name} has type {other:?}, which the checker does not know")),
        }
    }
}

fn check_len(len: usize, min: Option<f64>, max: Option<f64>, path: &str, out: &mut Vec<String>) {
    if min.is_some_and(|m| (len as f64) < m) || max.is_some_and(|m| (len as f64) > m) {
        out.push(format!("{path}: length {len} is outside {min:?}..{max:?}"));
    }
}

fn join(values: &[Value]) -> String {
    values.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
}

/// The CodeDeploy model of the botocore installed in the virtualenv `venv`
/// (the newest API version there), if any.
pub fn botocore_model_in(venv: &Path) -> Option<PathBuf> {
    let lib = venv.join("lib");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&lib)
        .ok()?
        .flatten()
        .map(|python| python.path().join("site-packages/botocore/data/codedeploy"))
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|versions| versions.flatten().map(|v| v.path()))
        .flat_map(|version| ["service-2.json.gz", "service-2.json"].map(|f| version.join(f)))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
}

/// The version of the botocore installed in `venv`, read from its
/// dist-info directory name, for messages.
pub fn botocore_version_in(venv: &Path) -> Option<String> {
    std::fs::read_dir(venv.join("lib"))
        .ok()?
        .flatten()
        .filter_map(|python| std::fs::read_dir(python.path().join("site-packages")).ok())
        .flat_map(|dir| dir.flatten())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            Some(name.strip_prefix("botocore-")?.strip_suffix(".dist-info")?.to_string())
        })
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A tiny model with the parts the checker reads.
    fn model() -> ServiceModel {
        let doc = json!({
            "metadata": { "targetPrefix": "CodeDeploy_20141006" },
            "operations": {
                "GetThing": { "output": { "shape": "GetThingOutput" }, "errors": [{ "shape": "ThingMissingException" }] },
                "DeleteThing": {}
            },
            "shapes": {
                "GetThingOutput": { "type": "structure", "members": { "thing": { "shape": "Thing" } } },
                "Thing": {
                    "type": "structure",
                    "required": ["name"],
                    "members": {
                        "name": { "shape": "Name" },
                        "status": { "shape": "Status" },
                        "count": { "shape": "Count" },
                        "tags": { "shape": "Tags" },
                        "at": { "shape": "Timestamp" },
                        "on": { "shape": "Flag" }
                    }
                },
                "Name": { "type": "string", "min": 1, "max": 5 },
                "Status": { "type": "string", "enum": ["Ok", "Bad"] },
                "Count": { "type": "integer", "max": 10 },
                "Tags": { "type": "list", "member": { "shape": "Name" } },
                "Timestamp": { "type": "timestamp" },
                "Flag": { "type": "boolean" },
                "ThingMissingException": { "type": "structure", "members": {}, "exception": true },
                "Message": { "type": "string" }
            }
        });
        ServiceModel::from_json(&doc.to_string(), "test").unwrap()
    }

    #[test]
    fn a_fitting_answer_passes() {
        let body = json!({ "thing": { "name": "a", "status": "Ok", "count": 3, "tags": ["x"], "at": 1.5, "on": true } });
        assert_eq!(model().check_output("GetThing", &body), Vec::<String>::new());
        assert_eq!(model().check_output("DeleteThing", &json!({})), Vec::<String>::new());
    }

    #[test]
    fn each_kind_of_drift_is_reported() {
        let m = model();
        let v = |body: Value| m.check_output("GetThing", &body);
        assert!(
            v(json!({ "thing": { "name": "a", "colour": "red" } }))[0].contains("$.thing.colour: Thing has no member colour")
        );
        assert!(v(json!({ "thing": { "status": "Ok" } }))[0].contains("required member name"));
        assert!(
            v(json!({ "thing": { "name": "a", "status": "Fine" } }))[0].contains("\"Fine\" is not a value of Status (Ok, Bad)")
        );
        assert!(v(json!({ "thing": { "name": "a", "count": "3" } }))[0].contains("expected integer"));
        assert!(v(json!({ "thing": { "name": "a", "count": 11 } }))[0].contains("outside"));
        assert!(v(json!({ "thing": { "name": "abcdef" } }))[0].contains("length 6"));
        assert!(v(json!({ "thing": { "name": "a", "tags": [1] } }))[0].contains("$.thing.tags[0]: expected string"));
        assert!(v(json!({ "thing": { "name": "a", "at": "2024-01-01" } }))[0].contains("expected timestamp"));
        assert!(v(json!({ "thing": { "name": "a", "on": "yes" } }))[0].contains("expected boolean"));
        assert!(m.check_output("DeleteThing", &json!({ "x": 1 }))[0].contains("has no output"));
        assert!(m.check_output("FlyThing", &json!({}))[0].contains("no such operation"));
    }

    #[test]
    fn errors_must_be_declared_or_common_and_fit_their_shape() {
        let m = model();
        let err = |op: Option<&str>, code: &str, body: Value| m.check_error(op, code, &body);
        let ok = |code: &str| json!({ "__type": code, "message": "m" });
        assert!(err(Some("GetThing"), "ThingMissingException", ok("ThingMissingException")).is_empty());
        assert!(err(Some("GetThing"), "ThrottlingException", ok("ThrottlingException")).is_empty());
        assert!(err(None, "MissingAuthenticationTokenException", ok("MissingAuthenticationTokenException")).is_empty());
        assert!(err(Some("DeleteThing"), "ThingMissingException", ok("ThingMissingException"))[0].contains("neither declared"));
        let extra = json!({ "__type": "ThingMissingException", "message": "m", "hint": "h" });
        assert!(err(Some("GetThing"), "ThingMissingException", extra)[0].contains("has no member hint"));
        let numeric = json!({ "__type": "ThingMissingException", "message": 7 });
        assert!(err(Some("GetThing"), "ThingMissingException", numeric)[0].contains("$.message"));
        let wrong_type = json!({ "__type": "Other", "message": "m" });
        assert!(err(Some("GetThing"), "ThingMissingException", wrong_type)[0].contains("__type"));
    }

    #[test]
    fn another_services_model_is_refused() {
        let doc = json!({ "metadata": { "targetPrefix": "Route53_20130401" }, "operations": {}, "shapes": {} });
        assert!(ServiceModel::from_json(&doc.to_string(), "r53").unwrap_err().contains("not the CodeDeploy"));
    }
}
