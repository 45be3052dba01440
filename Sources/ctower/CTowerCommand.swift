import ArgumentParser

/// `ctower`: the server and every operator verb in one executable. Logic lives in the libraries;
/// this target parses arguments and wires parts together.
@main
struct CTowerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctower",
        abstract: "Control Tower: compliant SMS outreach for land buyers, investors and agencies.",
        subcommands: [
            ServeCommand.self, MigrateCommand.self, CarrierCommand.self, LoginCommand.self, WhoAmICommand.self, BenchCommand.self,
            DemoCommand.self,
        ])
}
