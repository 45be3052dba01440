// ctower-carrier-mock: a deterministic fake carrier for tests and demos. See MockCarrier.
import CarrierKit

await CarrierPluginServer.run(MockCarrier())
