//! Conformance tests: every operation driven through the official
//! `aws-sdk-codedeploy` client, whose strict deserialisers catch any wrong
//! member name or type.

mod common;

mod agent;
mod api;
mod binary;
mod bluegreen;
mod configs;
mod ecs;
mod hooks;
mod iam;
mod lambda;
mod lifecycle;
mod model;
mod revisions;
mod targets;
mod wire;
