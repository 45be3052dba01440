// ctower-carrier-twilio: Twilio's Messages API as a Control Tower carrier plugin. See TwilioCarrier.
import CarrierKit
import TwilioCarrier

await CarrierPluginServer.run(TwilioCarrier())
