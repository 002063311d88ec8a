//! The demo service started by `obskit demo`.

use crate::DemoArgs;

/// Runs the demo service until it is asked to stop.
pub(crate) fn run(args: DemoArgs) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let _ = args.listen;
    Err("demo not built yet".into())
}
