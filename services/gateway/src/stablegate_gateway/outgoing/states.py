"""The outgoing-transfer state machine (DESIGN.md §8) as one pure function.

Sweeps, refunds and payouts all move money through the same steps:

    planned → awaiting_signature → signed → broadcast → confirmed
                                                      ↘ failed (reverted on chain: gas burned)
    planned → canceled (by a person, or its dependency failed: nothing was signed)
    awaiting_signature / signed → canceling (the same, but signed bytes may exist)
    canceling → canceled (provably never minable: a Tron expiration passed by the
                solidified head, or its EVM nonce taken by another confirmed transaction)
    canceling → confirmed / failed (mined all the same: booked like any other)
    planned / awaiting_signature → canceled (another transaction took its EVM nonce)
    awaiting_signature / signed / broadcast → failed (a Tron transaction expired unmined)
    signed / broadcast → replaced (another transaction took its EVM nonce, confirmed)
    confirmed / failed → broadcast (a reorg dropped the block that held it: tracked again)
    confirmed / failed → canceling (the same, for one canceled before we broadcast it: it
                was mined from `canceling`, and is watched, never sent, again)
    replaced / failed unmined → broadcast (found mined after all: booked from there)
    replaced → broadcast, canceled with a hash → canceling (the transaction that took the
                nonce was reorged out: the nonce is free again, the bytes minable)
    canceled → canceling (found mined after all: booked from canceling like any other)

- `planned`: the gateway chose source, destination, amount and fees; nothing is signed.
- `awaiting_signature`: its signing request was handed out; the plan is frozen (the
  request's digest covers it).
- `signed`: a signed transaction that matches the request was accepted; its hash is
  stored before anything is broadcast.
- `broadcast`: the signed bytes were (or may have been: a crash right after this state
  is stored) sent to the network. Re-sending the same bytes is the only retry.
- `confirmed`: mined with success and as deep as the network's confirmation depth.
- `failed`: it cannot happen as planned: reverted on chain (the gas is spent and
  recorded), or expired before it was mined (Tron). A replacement is planned anew.
- `canceling`: a person canceled it (or its dependency failed) after a signature could
  exist; the gateway never broadcasts it, but the bytes may still be mined by anyone who
  holds them, so it is still watched (and counted as in flight) until it provably cannot
  be mined. Not one of DESIGN §8's public statuses: the ops API shows it as `canceled`
  with `canceling: true` until it is settled.
- `canceled`: it will never be broadcast, and can never be mined.
- `replaced`: a transaction with the same nonce was mined instead (an EVM fee bump).

A reorg can drop a mined transaction only from `confirmed` or from a `failed` that was
reverted on chain; the caller, which knows whether the transfer was in a block, emits
`reorged_out` only then, and `reorged_out_canceled` instead for a transfer canceled
before the gateway broadcast it (mined from `canceling` by whoever held the bytes).
"""

from __future__ import annotations

from enum import StrEnum

from stablegate_common.core.errors import InvalidState


class OutgoingState(StrEnum):
    PLANNED = "planned"
    AWAITING_SIGNATURE = "awaiting_signature"
    SIGNED = "signed"
    BROADCAST = "broadcast"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    CANCELED = "canceled"
    REPLACED = "replaced"
    CANCELING = "canceling"


class OutgoingEvent(StrEnum):
    REQUEST_ISSUED = "request_issued"  # its signing request was handed out
    SIGNATURE_ACCEPTED = "signature_accepted"  # a verified signed transaction was stored
    BROADCAST_SENT = "broadcast_sent"  # the signed bytes are (re)sent
    CONFIRMED = "confirmed"  # mined with success, at confirmation depth
    REVERTED = "reverted"  # mined, the execution failed, at confirmation depth
    REORGED_OUT = "reorged_out"  # the block that held it left the canonical chain
    # The same, for a transfer canceled before we broadcast it (mined from canceling).
    REORGED_OUT_CANCELED = "reorged_out_canceled"
    EXPIRED = "expired"  # a Tron transaction's expiration passed and it is not mined
    CANCELED = "canceled"  # a person canceled it
    DEPENDENCY_FAILED = "dependency_failed"  # what it needs (a fee top-up) failed
    SUPERSEDED = "superseded"  # another transaction was confirmed with its nonce
    FOUND_MINED = "found_mined"  # a watcher saw it mined after we had given it up
    REINSTATED = "reinstated"  # the transaction that superseded it was reorged out


S = OutgoingState
E = OutgoingEvent

TERMINAL = frozenset({S.CONFIRMED, S.FAILED, S.CANCELED, S.REPLACED})
# Whatever is in these states may be on the network (or in someone's signed file).
IN_FLIGHT = frozenset({S.SIGNED, S.BROADCAST, S.CANCELING})

_TRANSITIONS: dict[tuple[OutgoingState, OutgoingEvent], OutgoingState] = {
    (S.PLANNED, E.REQUEST_ISSUED): S.AWAITING_SIGNATURE,
    (S.AWAITING_SIGNATURE, E.SIGNATURE_ACCEPTED): S.SIGNED,
    (S.SIGNED, E.BROADCAST_SENT): S.BROADCAST,
    (S.BROADCAST, E.BROADCAST_SENT): S.BROADCAST,
    (S.BROADCAST, E.CONFIRMED): S.CONFIRMED,
    (S.BROADCAST, E.REVERTED): S.FAILED,
    (S.CONFIRMED, E.REORGED_OUT): S.BROADCAST,
    (S.FAILED, E.REORGED_OUT): S.BROADCAST,
    (S.CONFIRMED, E.REORGED_OUT_CANCELED): S.CANCELING,
    (S.FAILED, E.REORGED_OUT_CANCELED): S.CANCELING,
    (S.AWAITING_SIGNATURE, E.EXPIRED): S.FAILED,
    (S.SIGNED, E.EXPIRED): S.FAILED,
    (S.BROADCAST, E.EXPIRED): S.FAILED,
    (S.PLANNED, E.CANCELED): S.CANCELED,
    (S.AWAITING_SIGNATURE, E.CANCELED): S.CANCELING,
    (S.SIGNED, E.CANCELED): S.CANCELING,
    (S.PLANNED, E.DEPENDENCY_FAILED): S.CANCELED,
    (S.AWAITING_SIGNATURE, E.DEPENDENCY_FAILED): S.CANCELING,
    (S.SIGNED, E.DEPENDENCY_FAILED): S.CANCELING,
    (S.PLANNED, E.SUPERSEDED): S.CANCELED,
    (S.AWAITING_SIGNATURE, E.SUPERSEDED): S.CANCELED,
    (S.SIGNED, E.SUPERSEDED): S.REPLACED,
    (S.BROADCAST, E.SUPERSEDED): S.REPLACED,
    # Canceled after a signature could exist: watched until it provably cannot be mined.
    (S.CANCELING, E.EXPIRED): S.CANCELED,
    (S.CANCELING, E.SUPERSEDED): S.CANCELED,
    (S.CANCELING, E.CONFIRMED): S.CONFIRMED,
    (S.CANCELING, E.REVERTED): S.FAILED,
    # Given up too early: the chain says otherwise.
    (S.REPLACED, E.FOUND_MINED): S.BROADCAST,
    (S.FAILED, E.FOUND_MINED): S.BROADCAST,
    (S.REPLACED, E.REINSTATED): S.BROADCAST,
    (S.CANCELED, E.REINSTATED): S.CANCELING,
    (S.CANCELED, E.FOUND_MINED): S.CANCELING,
}


class InvalidOutgoingTransition(InvalidState):
    def __init__(self, state: OutgoingState, event: OutgoingEvent) -> None:
        super().__init__(f"an outgoing transfer that is {state} cannot take {event}")
        self.state = state
        self.event = event


def transition(state: OutgoingState, event: OutgoingEvent) -> OutgoingState:
    """The next state, or InvalidOutgoingTransition: nothing else changes a state."""
    try:
        return _TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidOutgoingTransition(state, event) from None


def can(state: OutgoingState, event: OutgoingEvent) -> bool:
    return (state, event) in _TRANSITIONS
