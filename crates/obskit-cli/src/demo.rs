//! The demo service started by `obskit demo`.

use crate::DemoArgs;

/// Runs the demo service until it is asked to stop.
#[expect(
    clippy::needless_pass_by_value,
    reason = "the service will own its arguments; this placeholder reads none of them"
)]
pub(crate) fn run(args: DemoArgs) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let _ = args.listen;
    Err("demo not built yet".into())
}
