"""What a crowd is to the rest of the tool: everything a campaign does on a platform, behind one
interface. Commands, views, tasks and the other services ask `crowd_for(campaign)` (see
`annotator.crowds`) and call these methods; only an adapter knows its platform, builds its client
(from Django settings) and speaks to it.

A method a platform has no use for keeps the default here: a platform without payments pays
nothing, one without HIT lifecycle refuses to expire HITs, and so on, each with a message that says
so. Every error an adapter raises is a CrowdError, carrying the platform's own words."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, Q

from annotator.errors import ActionRefused

if TYPE_CHECKING:
    from django.contrib.admin import AdminSite
    from django.urls import URLPattern

    from annotator.models import Answer, Assignment, Bonus, Campaign, Hit, Worker
    from annotator.services.review import Reviewer
    from annotator.services.review_rules import RuleOutcome, RuleReview


class CrowdError(ActionRefused):
    """The platform refused, could not be reached, or does not offer what was asked; the message says
    which call and why, in the platform's own words where it gave some."""


class CrowdConfigError(CrowdError, ImproperlyConfigured):
    """A setting the platform's client needs is missing (the message names the environment variable):
    Django's ImproperlyConfigured, and a CrowdError, so a command or a dashboard action says so
    instead of failing."""


@dataclass(frozen=True)
class Backend:
    """What `publish --backend` names: a crowd and, where the platform has several, an environment."""

    name: str
    platform: str
    environment: str
    label: str
    default: bool = False  # what `publish` uses without --backend (MTurk's sandbox: it spends no money)


@dataclass(frozen=True)
class Option:
    """A command-line option of `publish` that a crowd takes (argparse's flags and keywords). Two crowds
    may share one flag (--title): the first declaration is used, so shared options default to None and
    each crowd applies its own default."""

    flags: tuple[str, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return str(self.kwargs.get("dest") or self.flags[0].lstrip("-").replace("-", "_"))


@dataclass
class PublishPlan:
    """What publishing will do and cost, shown before anything is created. `detail` is the crowd's own
    plan and `settings` its parsed options, handed back to its `publish`."""

    backend: Backend
    where: str  # "the MTurk SANDBOX (no money)"
    text: str
    total: Decimal = Decimal(0)
    enough: bool = True  # the account can pay for it
    spends_money: str = ""  # where money is spent ("production", "Prolific"): asks for a confirmation
    steps: int = 0  # for a progress bar
    settings: Any = None
    detail: Any = None


@dataclass
class CampaignMoney:
    """What a campaign cost on its platform: spent on approved work, owed on work awaiting approval."""

    paid: bool
    approved: int
    submitted: int
    spent: Decimal
    owed: Decimal
    bonuses: Decimal = Decimal(0)
    platform: str = ""
    noun: str = "assignment"  # what is approved and paid: an assignment, a submission
    basis: str = ""  # "rewards with MTurk's commission"


@dataclass
class LifecycleReport:
    done: int = 0
    refused: list[str] = field(default_factory=list)


class Crowd:
    """The default crowd: answers confirmed as they arrive, nothing to sync, pay, block or expire on a
    platform. Adapters override what their platform does."""

    name: ClassVar[str]  # the platform's name: Campaign.platform, Answer.source, Worker.kind
    label: ClassVar[str]  # "Mechanical Turk"
    short: ClassVar[str] = ""  # "MTurk", in messages
    backends: ClassVar[tuple[Backend, ...]] = ()
    confirms: ClassVar[bool] = False  # an answer counts only once the platform vouches for it (sync)
    pool: ClassVar[bool] = False  # signed-in annotators take its HITs from the pool (the local pages)
    syncs: ClassVar[bool] = False
    decides_per: ClassVar[str] = "answer"  # or "submission": one decision for a participant's whole turn
    decision_noun: ClassVar[str] = "answers"  # what review by rule decides, in its report
    bonus_per: ClassVar[str] = ""  # "answer", "worker" (in bulk), or "": bonuses are not paid through us
    pays_on_approval: ClassVar[bool] = False  # approving an answer pays it
    approves_rejected: ClassVar[bool] = False  # a rejected answer can be approved after all
    lifecycle: ClassVar[tuple[str, ...]] = ()  # HIT actions the platform offers: expire, extend, delete
    dashboard_template: ClassVar[str] = "crowds/campaign.html"

    @property
    def shortname(self) -> str:
        return self.short or self.label

    def refuse(self, what: str) -> CrowdError:
        return CrowdError(f"{self.label} does not offer this: {what}.")

    # Where a campaign runs ------------------------------------------------------------------------

    def describe(self, campaign: Campaign) -> str:
        """Where the campaign runs, in words ("Mechanical Turk sandbox")."""
        for backend in self.backends:
            if backend.environment == campaign.environment:
                return backend.label
        return self.label

    def worker_environment(self, campaign: Campaign) -> str:
        """The environment this campaign's workers belong to (`Worker.environment`)."""
        return campaign.environment

    # Publishing -------------------------------------------------------------------------------------

    def publish_options(self) -> list[Option]:
        return []

    def publish_plan(self, campaign: Campaign, backend: Backend, options: dict[str, Any]) -> PublishPlan:
        """Check the options (before any call that costs or creates anything) and price the campaign."""
        raise NotImplementedError

    def publish(
        self, campaign: Campaign, plan: PublishPlan, *, actor: str, progress: Callable[[int], None] | None = None
    ) -> list[str]:
        """Create what the platform needs; safe to run again (nothing is created twice). Lines to show."""
        raise NotImplementedError

    # The answers' trust -------------------------------------------------------------------------------

    def stored_confirmation(self) -> str:
        """How an answer arriving on our page is stored: confirmed, or unconfirmed until sync."""
        from annotator.models import Answer

        return Answer.Confirmation.UNCONFIRMED if self.confirms else Answer.Confirmation.CONFIRMED

    def takes_late_answer(self, assignment: Assignment, now: datetime) -> bool:
        """Whether an answer arriving after its campaign finished is still wanted."""
        return False

    def sync(self, campaign: Campaign, *, adopt: bool = False) -> list[str]:
        """Mirror the platform's view of the campaign: confirms answers, mirrors decisions. Lines to show."""
        raise CrowdError(f"Campaign {campaign.name!r} runs on {self.label}: there is nothing to sync.")

    # Decisions ----------------------------------------------------------------------------------------

    def answer_rejecting(self, answer: Answer, feedback: str) -> None:
        """The platform's side of rejecting one answer, made before ours (a refusal changes nothing)."""

    def answer_approving(self, answer: Answer, feedback: str) -> None:
        """The platform's side of approving one answer (paying it, where approving pays)."""

    def more_answers(self, hit: Hit, more: int) -> None:
        """The platform's side of a HIT taking `more` answers than it asked for (send back)."""

    def review_by_rule(self, *, campaign: Campaign, reviewer: Reviewer, request: RuleReview) -> RuleOutcome:
        """Decide the campaign's submitted answers by rule, one answer at a time."""
        from annotator.services.review_rules import answers_review_by_rule

        return answers_review_by_rule(campaign=campaign, reviewer=reviewer, request=request)

    def decide(
        self, *, campaign: Campaign, ident: str, approve: bool, reviewer: Reviewer, feedback: str, category: str = ""
    ) -> str:
        """Approve or reject by the platform's id: here an answer's assignment id. Returns what was done."""
        from annotator.models import Answer
        from annotator.services import review

        answer = Answer.objects.filter(hit__campaign=campaign, assignment__external_id=ident).first()
        if answer is None:
            raise CrowdError(f"No answer of campaign {campaign.name!r} has assignment {ident!r}.")
        if approve:
            review.answer_approve(answer_id=answer.pk, reviewer=reviewer, feedback=feedback)
        else:
            review.answer_reject(answer_id=answer.pk, reviewer=reviewer, feedback=feedback)
        return f"{'approved' if approve else 'rejected'} {ident}"

    def rejection_categories(self) -> tuple[str, ...]:
        """The platform's reasons for a rejection, where it asks for one."""
        return ()

    # Money ----------------------------------------------------------------------------------------------

    def bonus_answer(self, answer: Answer, bonus: Bonus) -> None:
        """Pay a recorded bonus for one answer on the platform (its token makes a retry pay once)."""
        raise self.refuse("bonuses for one answer")

    def bonus_workers(self, campaign: Campaign, bonuses: list[Bonus]) -> str:
        """Pay recorded bonuses to several workers of a campaign at once; returns the payment's id."""
        raise self.refuse("bonuses paid in bulk")

    def money(self, campaign: Campaign) -> CampaignMoney:
        from annotator.models import Answer

        counts = Answer.objects.filter(hit__campaign=campaign).aggregate(
            approved=Count("id", filter=Q(review=Answer.Review.APPROVED)),
            submitted=Count("id", filter=Q(review=Answer.Review.SUBMITTED)),
        )
        return CampaignMoney(
            False, counts["approved"], counts["submitted"], Decimal(0), Decimal(0), platform=self.label
        )

    # Workers and HITs -------------------------------------------------------------------------------------

    def block(self, worker: Worker, *, block: bool, reason: str) -> None:
        """The platform's side of blocking (or unblocking) a worker; ours is `workers.worker_block`."""

    def hits_change(self, campaign: Campaign, action: str, *, hours: int) -> LifecycleReport:
        raise CrowdError(f"Campaign {campaign.name!r} runs on {self.label}, which has no HITs to {action}.")

    # What the dashboard and the site show --------------------------------------------------------------

    def dashboard_context(self, campaign: Campaign) -> dict[str, Any]:
        """What the campaign page's platform section shows (the crowd's `dashboard_template`)."""
        return {}

    def urls(self) -> list[URLPattern]:
        """The pages the platform's workers land on."""
        return []

    def register_admin(self, site: AdminSite) -> None:
        """The platform's own records in the admin."""
