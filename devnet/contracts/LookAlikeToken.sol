// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title A counterfeit stablecoin: the same name, symbol and decimals as a real one, and
/// Transfer events with no balances behind them. Only the emitting contract's address
/// tells its logs apart from genuine transfers, which is what the gateway's token
/// allow-list is tested against. It can also emit Transfer-topic logs of other shapes
/// (ERC-721 style, malformed data) that a decoder must skip.
contract LookAlikeToken {
    string public name;
    string public symbol;
    uint8 public immutable decimals;

    bytes32 private constant TRANSFER_TOPIC = keccak256("Transfer(address,address,uint256)");

    event Transfer(address indexed from, address indexed to, uint256 value);

    constructor(string memory name_, string memory symbol_, uint8 decimals_) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
    }

    /// Wallets and explorers show whatever a contract claims; this one claims nothing.
    function balanceOf(address) external pure returns (uint256) {
        return 0;
    }

    /// An ERC-20 shaped Transfer log claiming that `sender` paid `recipient`.
    function fakeTransfer(address sender, address recipient, uint256 value) external {
        emit Transfer(sender, recipient, value);
    }

    /// ERC-721 shape: the token id is indexed, so the log has four topics and no data.
    function fakeNftTransfer(address sender, address recipient, uint256 tokenId) external {
        bytes32 topic = TRANSFER_TOPIC;
        assembly {
            log4(0, 0, topic, sender, recipient, tokenId)
        }
    }

    /// Three Transfer topics with arbitrary data (an ERC-20 log carries exactly 32 bytes).
    function fakeMalformedTransfer(address sender, address recipient, bytes calldata data) external {
        bytes memory payload = data;
        bytes32 topic = TRANSFER_TOPIC;
        assembly {
            log3(add(payload, 32), mload(payload), topic, sender, recipient)
        }
    }
}
