package template

// kind is the destination of a compiled field operation.
type kind uint8

// Field destinations. Names follow the IANA IPFIX information elements.
const (
	kindSkip kind = iota
	kindOctetDelta
	kindPacketDelta
	kindOctetTotal
	kindPacketTotal
	kindProto
	kindTOS
	kindTCPFlags
	kindSrcPort
	kindDstPort
	kindSrcIPv4
	kindDstIPv4
	kindSrcIPv6
	kindDstIPv6
	kindSrcMask
	kindDstMask
	kindInIf
	kindOutIf
	kindNextHopIPv4
	kindBGPNextHopIPv4
	kindNextHopIPv6
	kindBGPNextHopIPv6
	kindSrcAS
	kindDstAS
	kindLastSwitched
	kindFirstSwitched
	kindStartSeconds
	kindEndSeconds
	kindStartMillis
	kindEndMillis
	kindStartMicros
	kindEndMicros
	kindStartNanos
	kindEndNanos
	kindStartDeltaMicros
	kindEndDeltaMicros
	kindSystemInitMillis
	kindSrcVLAN
	kindDstVLAN
	kindDot1qVLAN
	kindPostDot1qVLAN
	kindSrcMAC
	kindDstMAC
	kindPostSrcMAC
	kindPostDstMAC
	kindSamplingInterval
	kindSamplerID
	kindSamplerRandomInterval
	kindSelectorID
	kindSamplingPacketInterval
	kindSamplingPacketSpace
	kindICMPTypeCode
	kindICMPType
	kindICMPCode
)

// Information element numbers used by the decoder (IANA IPFIX registry;
// NetFlow v9 uses the same numbers for these fields).
const (
	ieOctetDeltaCount             = 1
	iePacketDeltaCount            = 2
	ieProtocolIdentifier          = 4
	ieIPClassOfService            = 5
	ieTCPControlBits              = 6
	ieSourceTransportPort         = 7
	ieSourceIPv4Address           = 8
	ieSourceIPv4PrefixLength      = 9
	ieIngressInterface            = 10
	ieDestinationTransportPort    = 11
	ieDestinationIPv4Address      = 12
	ieDestinationIPv4PrefixLength = 13
	ieEgressInterface             = 14
	ieIPNextHopIPv4Address        = 15
	ieBGPSourceAsNumber           = 16
	ieBGPDestinationAsNumber      = 17
	ieBGPNextHopIPv4Address       = 18
	ieFlowEndSysUpTime            = 21
	ieFlowStartSysUpTime          = 22
	ieSourceIPv6Address           = 27
	ieICMPTypeCodeIPv4            = 32
	ieICMPTypeCodeIPv6            = 139
	ieICMPTypeIPv4                = 176
	ieICMPCodeIPv4                = 177
	ieICMPTypeIPv6                = 178
	ieICMPCodeIPv6                = 179
	ieDestinationIPv6Address      = 28
	ieSourceIPv6PrefixLength      = 29
	ieDestinationIPv6PrefixLength = 30
	ieSamplingInterval            = 34
	ieSamplerID                   = 48
	ieSamplerRandomInterval       = 50
	ieSourceMacAddress            = 56
	iePostDestinationMacAddress   = 57
	ieVlanID                      = 58
	iePostVlanID                  = 59
	ieIPNextHopIPv6Address        = 62
	ieBGPNextHopIPv6Address       = 63
	ieDestinationMacAddress       = 80
	iePostSourceMacAddress        = 81
	ieOctetTotalCount             = 85
	iePacketTotalCount            = 86
	ieFlowStartSeconds            = 150
	ieFlowEndSeconds              = 151
	ieFlowStartMilliseconds       = 152
	ieFlowEndMilliseconds         = 153
	ieFlowStartMicroseconds       = 154
	ieFlowEndMicroseconds         = 155
	ieFlowStartNanoseconds        = 156
	ieFlowEndNanoseconds          = 157
	ieFlowStartDeltaMicroseconds  = 158
	ieFlowEndDeltaMicroseconds    = 159
	ieSystemInitTimeMilliseconds  = 160
	ieDot1qVlanID                 = 243
	iePostDot1qVlanID             = 254
	ieSelectorID                  = 302
	ieSamplingPacketInterval      = 305
	ieSamplingPacketSpace         = 306
)

// kindOf maps an IANA information element to a destination. Options
// templates keep only the elements that describe sampling and clocks;
// everything else in them is skipped.
func kindOf(id uint16, options bool) kind {
	switch id {
	case ieSamplingInterval:
		return kindSamplingInterval
	case ieSamplerID:
		return kindSamplerID
	case ieSamplerRandomInterval:
		return kindSamplerRandomInterval
	case ieSelectorID:
		return kindSelectorID
	case ieSamplingPacketInterval:
		return kindSamplingPacketInterval
	case ieSamplingPacketSpace:
		return kindSamplingPacketSpace
	case ieSystemInitTimeMilliseconds:
		return kindSystemInitMillis
	}
	if options {
		return kindSkip
	}
	switch id {
	case ieOctetDeltaCount:
		return kindOctetDelta
	case iePacketDeltaCount:
		return kindPacketDelta
	case ieOctetTotalCount:
		return kindOctetTotal
	case iePacketTotalCount:
		return kindPacketTotal
	case ieProtocolIdentifier:
		return kindProto
	case ieIPClassOfService:
		return kindTOS
	case ieTCPControlBits:
		return kindTCPFlags
	case ieSourceTransportPort:
		return kindSrcPort
	case ieDestinationTransportPort:
		return kindDstPort
	case ieSourceIPv4Address:
		return kindSrcIPv4
	case ieDestinationIPv4Address:
		return kindDstIPv4
	case ieSourceIPv6Address:
		return kindSrcIPv6
	case ieDestinationIPv6Address:
		return kindDstIPv6
	case ieSourceIPv4PrefixLength, ieSourceIPv6PrefixLength:
		return kindSrcMask
	case ieDestinationIPv4PrefixLength, ieDestinationIPv6PrefixLength:
		return kindDstMask
	case ieIngressInterface:
		return kindInIf
	case ieEgressInterface:
		return kindOutIf
	case ieIPNextHopIPv4Address:
		return kindNextHopIPv4
	case ieBGPNextHopIPv4Address:
		return kindBGPNextHopIPv4
	case ieIPNextHopIPv6Address:
		return kindNextHopIPv6
	case ieBGPNextHopIPv6Address:
		return kindBGPNextHopIPv6
	case ieBGPSourceAsNumber:
		return kindSrcAS
	case ieBGPDestinationAsNumber:
		return kindDstAS
	case ieFlowEndSysUpTime:
		return kindLastSwitched
	case ieFlowStartSysUpTime:
		return kindFirstSwitched
	case ieFlowStartSeconds:
		return kindStartSeconds
	case ieFlowEndSeconds:
		return kindEndSeconds
	case ieFlowStartMilliseconds:
		return kindStartMillis
	case ieFlowEndMilliseconds:
		return kindEndMillis
	case ieFlowStartMicroseconds:
		return kindStartMicros
	case ieFlowEndMicroseconds:
		return kindEndMicros
	case ieFlowStartNanoseconds:
		return kindStartNanos
	case ieFlowEndNanoseconds:
		return kindEndNanos
	case ieFlowStartDeltaMicroseconds:
		return kindStartDeltaMicros
	case ieFlowEndDeltaMicroseconds:
		return kindEndDeltaMicros
	case ieVlanID:
		return kindSrcVLAN
	case iePostVlanID:
		return kindDstVLAN
	case ieDot1qVlanID:
		return kindDot1qVLAN
	case iePostDot1qVlanID:
		return kindPostDot1qVLAN
	case ieICMPTypeCodeIPv4, ieICMPTypeCodeIPv6:
		return kindICMPTypeCode
	case ieICMPTypeIPv4, ieICMPTypeIPv6:
		return kindICMPType
	case ieICMPCodeIPv4, ieICMPCodeIPv6:
		return kindICMPCode
	case ieSourceMacAddress:
		return kindSrcMAC
	case ieDestinationMacAddress:
		return kindDstMAC
	case iePostSourceMacAddress:
		return kindPostSrcMAC
	case iePostDestinationMacAddress:
		return kindPostDstMAC
	}
	return kindSkip
}
