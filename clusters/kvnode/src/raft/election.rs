//! Elections: pre-vote, vote, and counting answers.

use super::node::Raft;
use super::types::{Message, MessageBody};
use crate::consensus::Role;

impl Raft {
    /// Starts a pre-vote round: asks whether peers would vote for us in `term + 1`,
    /// without raising our term (so a node cut off by a partition cannot inflate terms).
    pub(super) fn campaign_pre_vote(&mut self) {
        self.reads.fail_all();
        if self.role != Role::PreCandidate {
            self.role = Role::PreCandidate;
            self.log_role();
        }
        self.leader = None;
        self.progress.clear();
        self.votes.clear();
        self.votes.insert(self.id, true);
        self.timer.reset_election_timeout();
        if self.votes.len() >= self.quorum() {
            self.campaign_vote();
            return;
        }
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        let term = self.term + 1;
        for peer in self.peers() {
            self.send(
                peer,
                term,
                MessageBody::PreVote {
                    last_index,
                    last_term,
                },
            );
        }
    }

    /// Starts a real election in a new term, voting for ourselves.
    fn campaign_vote(&mut self) {
        self.term += 1;
        self.role = Role::Candidate;
        self.log_role();
        self.cast_vote(self.id);
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.id, true);
        self.timer.reset_election_timeout();
        if self.votes.len() >= self.quorum() {
            self.become_leader();
            return;
        }
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        let term = self.term;
        for peer in self.peers() {
            self.send(
                peer,
                term,
                MessageBody::Vote {
                    last_index,
                    last_term,
                },
            );
        }
    }

    /// Answers a pre-vote or vote request whose term is at least ours (term rules done).
    pub(super) fn handle_vote_request(&mut self, m: Message) {
        let (pre, last_index, last_term) = match m.body {
            MessageBody::PreVote {
                last_index,
                last_term,
            } => (true, last_index, last_term),
            MessageBody::Vote {
                last_index,
                last_term,
            } => (false, last_index, last_term),
            _ => return,
        };
        let can_vote = self.vote == Some(m.from)
            || (self.vote.is_none() && self.leader.is_none())
            || (pre && m.term > self.term);
        let granted = can_vote && self.log.is_up_to_date(last_index, last_term);
        let reply_term = if granted { m.term } else { self.term };
        if granted && !pre {
            if self.vote != Some(m.from) {
                self.cast_vote(m.from);
            }
            self.timer.election_elapsed = 0;
        }
        let body = if pre {
            MessageBody::PreVoteResponse { granted }
        } else {
            MessageBody::VoteResponse { granted }
        };
        self.send(m.from, reply_term, body);
    }

    /// Counts an answer to our pre-vote or vote request.
    pub(super) fn handle_vote_response(&mut self, m: Message) {
        let granted = match (self.role, &m.body) {
            (Role::PreCandidate, MessageBody::PreVoteResponse { granted }) => {
                // Granted answers carry the term we would enter; refusals carry ours.
                let expected = if *granted { self.term + 1 } else { self.term };
                if m.term != expected {
                    return;
                }
                *granted
            }
            (Role::Candidate, MessageBody::VoteResponse { granted }) if m.term == self.term => {
                *granted
            }
            _ => return,
        };
        self.votes.entry(m.from).or_insert(granted);
        let yes = self.votes.values().filter(|v| **v).count();
        let no = self.votes.len() - yes;
        if yes >= self.quorum() {
            if self.role == Role::PreCandidate {
                self.campaign_vote();
            } else {
                self.become_leader();
            }
        } else if no >= self.quorum() {
            let term = self.term;
            self.become_follower(term, None);
        }
    }
}
